// Autograd functions that save less for backward when weights are frozen
// (every PEFT method freezes most of the model):
// - frozenLinear: y = x·Wᵀ + b with W frozen saves no activation at all
//   (dX = dY·W needs only W); the bias may train (BitFit).
// - reluMask: relu that keeps a 1-byte mask instead of its float output.
// Backward passes use differentiable ops, so double backward works.
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

class ReluMaskFn : public torch::autograd::Function<ReluMaskFn> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x) {
    auto y = torch::relu(x);
    ctx->saved_data["mask"] = x.gt(0);
    return y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list gradOutputs) {
    auto mask = ctx->saved_data["mask"].toTensor();
    return {gradOutputs[0] * mask.to(gradOutputs[0].scalar_type())};
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
