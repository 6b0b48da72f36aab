// Batched matrix product for the attention scores and outputs (many small
// matrices: batch·heads of [t, hd]·[hd, T]). On the CPU libtorch's bmm hands
// each matrix to BLAS in turn, and OpenBLAS splits even a 64×64×64 product over
// every thread, so the threads mostly wait on each other. Here the batch is
// split over the threads instead, each product running on one thread.
// The backward is written with the same op, so double backward works.
#include "common.h"

namespace randmask {
namespace {

torch::Tensor BatchParallelBmm(const torch::Tensor& a, const torch::Tensor& b) {
  if (!a.device().is_cpu() || at::get_num_threads() == 1) return torch::bmm(a, b);
  auto out = torch::empty({a.size(0), a.size(1), b.size(2)}, a.options());
  // Inside parallel_for ATen (and OpenMP OpenBLAS) run each product single-threaded.
  at::parallel_for(0, a.size(0), 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      auto o = out.select(0, i);
      at::mm_out(o, a.select(0, i), b.select(0, i));
    }
  });
  return out;
}

class BatchMatmulFn : public torch::autograd::Function<BatchMatmulFn> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& a, const torch::Tensor& b) {
    ctx->save_for_backward({a, b});
    torch::NoGradGuard noGrad;
    return BatchParallelBmm(a, b);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list gradOutputs) {
    auto saved = ctx->get_saved_variables();
    auto& g = gradOutputs[0];
    torch::Tensor da, db;
    if (ctx->needs_input_grad(0)) da = BatchMatmulFn::apply(g, saved[1].transpose(1, 2));
    if (ctx->needs_input_grad(1)) db = BatchMatmulFn::apply(saved[0].transpose(1, 2), g);
    return {da, db};
  }
};

}  // namespace

// batchMatmul(a [B, m, k], b [B, k, n]) → [B, m, n]
static Napi::Value BatchMatmul(const Napi::CallbackInfo& info) {
  auto& a = T(info, 0);
  auto& b = T(info, 1);
  if (a.dim() != 3 || b.dim() != 3 || a.size(0) != b.size(0) || a.size(2) != b.size(1)) {
    throw std::invalid_argument("batchMatmul: expected [B, m, k] and [B, k, n] with equal B and k");
  }
  return TensorHandle::Wrap(info.Env(), BatchMatmulFn::apply(a, b));
}

void RegisterBatchMatmul(Registry& r) { r.add<BatchMatmul>("batchMatmul"); }

}  // namespace randmask
