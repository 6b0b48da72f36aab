// Shared pieces of the addon: the JS-visible tensor handle, argument helpers,
// and the guard that turns libtorch errors into JS exceptions.
#pragma once
#include <napi.h>
#include <torch/torch.h>

#include <string>
#include <vector>

namespace randmask {

// A JS object owning one torch::Tensor. dispose() frees it at once; the
// finalizer is only the safety net for handles the program forgot.
class TensorHandle : public Napi::ObjectWrap<TensorHandle> {
 public:
  static Napi::Function Init(Napi::Env env);
  static Napi::Object Wrap(Napi::Env env, torch::Tensor t);
  static torch::Tensor& Get(const Napi::Value& v, const char* what);
  static bool IsHandle(const Napi::Value& v);

  explicit TensorHandle(const Napi::CallbackInfo& info);
  ~TensorHandle() override;

  torch::Tensor tensor;

 private:
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value IsDisposed(const Napi::CallbackInfo& info);
  void Release(Napi::Env env);
  int64_t reportedBytes_ = 0;
  bool released_ = false;
};

// The default CPU generator's state (a uint8 tensor), read and restored under its lock.
torch::Tensor CpuRngState();
void SetCpuRngState(const torch::Tensor& state);

// Live-handle accounting, for leak tests and for reporting to V8.
struct HandleStats {
  int64_t live = 0;
  int64_t bytes = 0;
};
HandleStats& Stats();

torch::ScalarType ParseDtype(const Napi::Value& v);
std::string DtypeName(torch::ScalarType t);
std::vector<int64_t> ToShape(const Napi::Value& v, const char* what);
torch::Tensor ScalarOrTensor(const Napi::Value& v, const torch::Tensor& like);
torch::Device ParseDevice(const Napi::Value& v);
std::vector<torch::Tensor> ToTensorList(const Napi::Value& v, const char* what);
Napi::Array FromTensorList(Napi::Env env, const std::vector<torch::Tensor>& list);
Napi::Value MaybeWrap(Napi::Env env, const torch::Tensor& t);

using Handler = Napi::Value (*)(const Napi::CallbackInfo&);

// Runs an op, converting c10/std errors into one JS Error carrying libtorch's
// message without its C++ backtrace; the process survives.
template <Handler F>
Napi::Value Guarded(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw Napi::Error::New(info.Env(), e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
}

struct Registry {
  Napi::Env env;
  Napi::Object exports;
  template <Handler F>
  void add(const char* name) {
    exports.Set(name, Napi::Function::New(env, Guarded<F>, name));
  }
};

void RegisterTensorOps(Registry& r);
void RegisterAutogradOps(Registry& r);
void RegisterSparseDeltaLinear(Registry& r);
void RegisterCpuAllocator(Registry& r);
void RegisterFrozenOps(Registry& r);
void RegisterCheckpoint(Registry& r);
void InstallCpuAllocator();
Napi::Function InitAdamW(Napi::Env env);

// Argument access with messages that say which argument was wrong.
inline torch::Tensor& T(const Napi::CallbackInfo& info, size_t i) {
  static const char* names[] = {"argument 0", "argument 1", "argument 2", "argument 3",
                                "argument 4", "argument 5", "argument 6", "argument 7"};
  return TensorHandle::Get(info[i], i < 8 ? names[i] : "argument");
}
inline int64_t I(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), "expected an integer argument");
  return info[i].As<Napi::Number>().Int64Value();
}
inline double D(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), "expected a number argument");
  return info[i].As<Napi::Number>().DoubleValue();
}
inline bool B(const Napi::CallbackInfo& info, size_t i, bool dflt = false) {
  if (info[i].IsUndefined() || info[i].IsNull()) return dflt;
  return info[i].ToBoolean().Value();
}

}  // namespace randmask
