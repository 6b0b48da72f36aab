// Autograd surface: requires_grad, backward, .grad, and torch::autograd::grad
// with create_graph for Hessian-vector products.
#include "common.h"

namespace randmask {

#define OP(name) static Napi::Value name(const Napi::CallbackInfo& info)

OP(SetRequiresGrad) {
  T(info, 0).set_requires_grad(B(info, 1));
  return info.Env().Undefined();
}
OP(Grad) { return MaybeWrap(info.Env(), T(info, 0).grad()); }
OP(ClearGrad) {
  auto& t = T(info, 0);
  if (t.grad().defined()) t.mutable_grad() = torch::Tensor();
  return info.Env().Undefined();
}
// backward(loss, gradOutput | null, retainGraph)
OP(Backward) {
  auto& t = T(info, 0);
  torch::Tensor g;
  if (!info[1].IsNull() && !info[1].IsUndefined()) g = T(info, 1);
  t.backward(g, B(info, 2));
  return info.Env().Undefined();
}
// autogradGrad(outputs[], inputs[], gradOutputs[] | null, createGraph, allowUnused)
OP(AutogradGrad) {
  auto outputs = ToTensorList(info[0], "grad outputs");
  auto inputs = ToTensorList(info[1], "grad inputs");
  std::vector<torch::Tensor> gradOutputs;
  if (info[2].IsArray()) gradOutputs = ToTensorList(info[2], "grad gradOutputs");
  bool create = B(info, 3);
  auto grads = torch::autograd::grad(outputs, inputs, gradOutputs, create, create, B(info, 4));
  return FromTensorList(info.Env(), grads);
}
// clipGradNorm(params[], maxNorm): total L2 norm of all grads before clipping
// (HF Trainer's max_grad_norm). Returns NaN/Inf untouched so callers detect it.
OP(ClipGradNorm) {
  torch::NoGradGuard guard;
  auto params = ToTensorList(info[0], "clipGradNorm params");
  double maxNorm = D(info, 1);
  std::vector<torch::Tensor> norms;
  for (auto& p : params)
    if (p.grad().defined()) norms.push_back(p.grad().detach().to(torch::kFloat32).norm().reshape({1}));
  if (norms.empty()) return Napi::Number::New(info.Env(), 0.0);
  double total = torch::cat(norms).norm().item<double>();
  if (std::isfinite(total) && maxNorm > 0 && total > maxNorm) {
    double scale = maxNorm / (total + 1e-6);
    for (auto& p : params)
      if (p.grad().defined()) p.mutable_grad().mul_(scale);
  }
  return Napi::Number::New(info.Env(), total);
}

void RegisterAutogradOps(Registry& r) {
  r.add<SetRequiresGrad>("setRequiresGrad");
  r.add<Grad>("grad");
  r.add<ClearGrad>("clearGrad");
  r.add<Backward>("backward");
  r.add<AutogradGrad>("autogradGrad");
  r.add<ClipGradNorm>("clipGradNorm");
}

}  // namespace randmask
