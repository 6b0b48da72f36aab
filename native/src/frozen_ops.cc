// Autograd functions that save less for backward when weights are frozen
// (every PEFT method freezes most of the model):
// - frozenLinear: y = x·Wᵀ + b with W frozen saves no activation at all
//   (dX = dY·W needs only W); the bias may train (BitFit).
// - reluMask: relu that keeps a 1-byte mask instead of its float output.
// Backward passes use differentiable ops when a graph is recorded (create_graph),
// so double backward works; otherwise raw CPU kernels.
#include "common.h"

namespace randmask {
namespace {

class FrozenLinearFn : public torch::autograd::Function<FrozenLinearFn> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w,
                               const torch::Tensor& b) {
    bool hasBias = b.numel() > 0;
    ctx->saved_data["w"] = w;
    ctx->saved_data["has_bias"] = hasBias;
    return hasBias ? torch::linear(x, w, b) : torch::linear(x, w);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list gradOutputs) {
    auto w = ctx->saved_data["w"].toTensor();
    auto& g = gradOutputs[0];
    torch::Tensor dx, db;
    if (ctx->needs_input_grad(0)) dx = torch::matmul(g, w);
    if (ctx->saved_data["has_bias"].toBool() && ctx->needs_input_grad(2)) db = g.reshape({-1, g.size(-1)}).sum(0);
    return {dx, torch::Tensor(), db};
  }
};

// relu's 1-byte mask and its backward as bit operations on the raw IEEE
// encodings. relu passes the gradient where !(x <= 0) (threshold_backward):
// x > 0, which is the bits, read as an unsigned integer, in (0, +inf]; or x NaN,
// which is the magnitude bits above +inf's. The masked gradient keeps g's bits
// or clears them to +0. Branch-free loops the compiler vectorises, at every
// float width; libtorch 1.13's gt(0) and bool→float conversion made reluMask
// 2–5× a plain relu (measured, [512, 3072]).
constexpr int64_t kGrain = 1 << 15;

template <typename Bits>
void PassMaskCpu(const void* x, bool* mask, int64_t n, Bits infinity) {
  auto bits = static_cast<const Bits*>(x);
  constexpr Bits magnitude = static_cast<Bits>(~(Bits{1} << (sizeof(Bits) * 8 - 1)));
  at::parallel_for(0, n, kGrain, [bits, mask, infinity](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      mask[i] = (static_cast<Bits>(bits[i] - 1) < infinity) | ((bits[i] & magnitude) > infinity);
  });
}

template <typename Bits>
void MaskedGradCpu(const void* g, const bool* mask, void* out, int64_t n) {
  auto in = static_cast<const Bits*>(g);
  auto res = static_cast<Bits*>(out);
  at::parallel_for(0, n, kGrain, [in, mask, res](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) res[i] = in[i] & static_cast<Bits>(-static_cast<Bits>(mask[i]));
  });
}

// !(x <= 0) for a CPU float tensor; undefined for other dtypes (the caller falls back).
torch::Tensor PassMask(const torch::Tensor& x) {
  auto xc = x.contiguous();
  auto mask = torch::empty(xc.sizes(), xc.options().dtype(torch::kBool));
  bool* m = mask.data_ptr<bool>();
  int64_t n = xc.numel();
  switch (xc.scalar_type()) {
    case torch::kBFloat16: PassMaskCpu<uint16_t>(xc.data_ptr(), m, n, 0x7f80); break;
    case torch::kHalf: PassMaskCpu<uint16_t>(xc.data_ptr(), m, n, 0x7c00); break;
    case torch::kFloat: PassMaskCpu<uint32_t>(xc.data_ptr(), m, n, 0x7f800000u); break;
    case torch::kDouble: PassMaskCpu<uint64_t>(xc.data_ptr(), m, n, 0x7ff0000000000000ull); break;
    default: return torch::Tensor();
  }
  return mask;
}

// g where mask, else +0, for a CPU float tensor of the mask's shape; undefined otherwise.
torch::Tensor MaskedGrad(const torch::Tensor& g, const torch::Tensor& mask) {
  if (!g.device().is_cpu() || g.sizes() != mask.sizes()) return torch::Tensor();
  auto gc = g.contiguous();
  auto out = torch::empty_like(gc);
  const bool* m = mask.data_ptr<bool>();
  int64_t n = gc.numel();
  switch (gc.element_size()) {
    case 2: MaskedGradCpu<uint16_t>(gc.data_ptr(), m, out.data_ptr(), n); break;
    case 4: MaskedGradCpu<uint32_t>(gc.data_ptr(), m, out.data_ptr(), n); break;
    case 8: MaskedGradCpu<uint64_t>(gc.data_ptr(), m, out.data_ptr(), n); break;
    default: return torch::Tensor();
  }
  return out;
}

class ReluMaskFn : public torch::autograd::Function<ReluMaskFn> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x) {
    torch::Tensor mask = x.device().is_cpu() && x.is_floating_point() ? PassMask(x) : torch::Tensor();
    ctx->saved_data["mask"] = mask.defined() ? mask : x.le(0).logical_not();
    return torch::relu(x);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list gradOutputs) {
    auto mask = ctx->saved_data["mask"].toTensor();
    auto& g = gradOutputs[0];
    // The raw kernel records no graph: only when none is wanted (not create_graph).
    torch::Tensor masked = c10::GradMode::is_enabled() || !g.is_floating_point() ? torch::Tensor() : MaskedGrad(g, mask);
    return {masked.defined() ? masked : g * mask.to(g.scalar_type())};
  }
};

}  // namespace

// frozenLinear(x, weight, bias | null)
static Napi::Value FrozenLinear(const Napi::CallbackInfo& info) {
  auto& x = T(info, 0);
  auto& w = T(info, 1);
  if (w.requires_grad()) throw std::invalid_argument("frozenLinear: weight must be frozen (requires_grad false)");
  torch::Tensor b = (info[2].IsNull() || info[2].IsUndefined()) ? torch::empty({0}, w.options()) : T(info, 2);
  return TensorHandle::Wrap(info.Env(), FrozenLinearFn::apply(x, w, b));
}

static Napi::Value ReluMask(const Napi::CallbackInfo& info) {
  return TensorHandle::Wrap(info.Env(), ReluMaskFn::apply(T(info, 0)));
}

void RegisterFrozenOps(Registry& r) {
  r.add<FrozenLinear>("frozenLinear");
  r.add<ReluMask>("reluMask");
}

}  // namespace randmask
