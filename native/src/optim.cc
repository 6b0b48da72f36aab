// AdamW over a list of tensors, using libtorch's own implementation; the
// handle lets TypeScript step it, change the LR, and measure its state.
#include "common.h"

namespace randmask {

class AdamWHandle : public Napi::ObjectWrap<AdamWHandle> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "AdamW",
                       {InstanceMethod("step", &AdamWHandle::Step), InstanceMethod("zeroGrad", &AdamWHandle::ZeroGrad),
                        InstanceMethod("setLr", &AdamWHandle::SetLr),
                        InstanceMethod("stateBytes", &AdamWHandle::StateBytes)});
  }

  // new AdamW(params[], {lr, beta1, beta2, eps, weightDecay})
  explicit AdamWHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AdamWHandle>(info) {
    try {
      auto params = ToTensorList(info[0], "AdamW params");
      auto o = info[1].As<Napi::Object>();
      auto num = [&](const char* k, double d) {
        auto v = o.Get(k);
        return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : d;
      };
      auto opts = torch::optim::AdamWOptions(num("lr", 1e-3))
                      .betas(std::make_tuple(num("beta1", 0.9), num("beta2", 0.999)))
                      .eps(num("eps", 1e-8))
                      .weight_decay(num("weightDecay", 0.0));
      optimizer_ = std::make_unique<torch::optim::AdamW>(params, opts);
    } catch (const c10::Error& e) {
      throw Napi::Error::New(info.Env(), e.what_without_backtrace());
    }
  }

 private:
  Napi::Value Step(const Napi::CallbackInfo& info) {
    try {
      optimizer_->step();
    } catch (const c10::Error& e) {
      throw Napi::Error::New(info.Env(), e.what_without_backtrace());
    }
    return info.Env().Undefined();
  }
  Napi::Value ZeroGrad(const Napi::CallbackInfo& info) {
    // set_to_none frees the gradient buffers between steps.
    for (auto& group : optimizer_->param_groups())
      for (auto& p : group.params())
        if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
    return info.Env().Undefined();
  }
  Napi::Value SetLr(const Napi::CallbackInfo& info) {
    double lr = D(info, 0);
    for (auto& group : optimizer_->param_groups())
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    return info.Env().Undefined();
  }
  Napi::Value StateBytes(const Napi::CallbackInfo& info) {
    double bytes = 0;
    auto count = [&](const torch::Tensor& t) {
      if (t.defined()) bytes += static_cast<double>(t.numel() * t.element_size());
    };
    for (auto& kv : optimizer_->state()) {
      auto& s = static_cast<torch::optim::AdamWParamState&>(*kv.second);
      count(s.exp_avg());
      count(s.exp_avg_sq());
      count(s.max_exp_avg_sq());
    }
    return Napi::Number::New(info.Env(), bytes);
  }

  std::unique_ptr<torch::optim::AdamW> optimizer_;
};

Napi::Function InitAdamW(Napi::Env env) { return AdamWHandle::Init(env); }

}  // namespace randmask
