// AdamW over a list of tensors, using libtorch's own implementation; the
// handle lets TypeScript step it, change the LR, and measure its state.
#include <sstream>
#include <type_traits>

#include "common.h"

namespace randmask {

class AdamWHandle : public Napi::ObjectWrap<AdamWHandle> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "AdamW",
                       {InstanceMethod("step", &AdamWHandle::Step), InstanceMethod("zeroGrad", &AdamWHandle::ZeroGrad),
                        InstanceMethod("setLr", &AdamWHandle::SetLr),
                        InstanceMethod("stateBytes", &AdamWHandle::StateBytes),
                        InstanceMethod("getState", &AdamWHandle::GetState),
                        InstanceMethod("setState", &AdamWHandle::SetState)});
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

  // libtorch keys per-parameter state by the parameter's TensorImpl address: as a
  // string in 1.x (c10::guts::to_string of the pointer), as the pointer in 2.x.
  using StateMap = std::remove_reference_t<decltype(std::declval<torch::optim::AdamW&>().state())>;
  using StateKey = std::decay_t<decltype(std::declval<StateMap&>().begin()->first)>;
  template <typename K = StateKey>  // a template, so the branch not taken is never instantiated
  static K Key(const torch::Tensor& p) {
    if constexpr (std::is_same_v<K, std::string>) {
      std::ostringstream os;
      os << p.unsafeGetTensorImpl();
      return os.str();
    } else {
      return static_cast<K>(p.unsafeGetTensorImpl());
    }
  }

  // [{step, expAvg, expAvgSq}] in parameter order; null for a parameter not stepped yet.
  // The moments are copies, so saving them cannot race a later step.
  Napi::Value GetState(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    const auto& params = optimizer_->param_groups().at(0).params();
    auto out = Napi::Array::New(env, params.size());
    for (size_t i = 0; i < params.size(); i++) {
      auto it = optimizer_->state().find(Key(params[i]));
      if (it == optimizer_->state().end()) {
        out.Set(i, env.Null());
        continue;
      }
      auto& s = static_cast<torch::optim::AdamWParamState&>(*it->second);
      auto o = Napi::Object::New(env);
      o.Set("step", Napi::Number::New(env, static_cast<double>(s.step())));
      o.Set("expAvg", TensorHandle::Wrap(env, s.exp_avg().clone()));
      o.Set("expAvgSq", TensorHandle::Wrap(env, s.exp_avg_sq().clone()));
      out.Set(i, o);
    }
    return out;
  }
  // The inverse of getState: entries are copied in (shape and dtype must match the parameter).
  Napi::Value SetState(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    auto list = info[0].As<Napi::Array>();
    const auto& params = optimizer_->param_groups().at(0).params();
    if (list.Length() != params.size())
      throw Napi::Error::New(env, "AdamW.setState: expected " + std::to_string(params.size()) + " entries, got " +
                                      std::to_string(list.Length()));
    try {
      for (size_t i = 0; i < params.size(); i++) {
        auto v = list.Get(i);
        auto key = Key(params[i]);
        if (v.IsNull() || v.IsUndefined()) {
          optimizer_->state().erase(key);
          continue;
        }
        auto o = v.As<Napi::Object>();
        auto& m = TensorHandle::Get(o.Get("expAvg"), "expAvg");
        auto& sq = TensorHandle::Get(o.Get("expAvgSq"), "expAvgSq");
        if (!m.sizes().equals(params[i].sizes()) || !sq.sizes().equals(params[i].sizes()))
          throw Napi::Error::New(env, "AdamW.setState: moment shape differs from parameter " + std::to_string(i));
        auto s = std::make_unique<torch::optim::AdamWParamState>();
        s->step(static_cast<int64_t>(o.Get("step").As<Napi::Number>().Int64Value()));
        s->exp_avg(m.to(params[i].options()).clone());
        s->exp_avg_sq(sq.to(params[i].options()).clone());
        optimizer_->state()[key] = std::move(s);
      }
    } catch (const c10::Error& e) {
      throw Napi::Error::New(env, e.what_without_backtrace());
    }
    return env.Undefined();
  }

  std::unique_ptr<torch::optim::AdamW> optimizer_;
};

Napi::Function InitAdamW(Napi::Env env) { return AdamWHandle::Init(env); }

}  // namespace randmask
