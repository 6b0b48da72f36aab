// Module entry: the tensor handle, conversions between JS and tensors, and
// process-level settings (threads, seed, grad mode, build facts).
#include <dlfcn.h>
#include <link.h>

#include <cstdio>
#include <cstring>
#include <fstream>

#include "common.h"

namespace randmask {

struct InstanceData {
  Napi::FunctionReference tensorCtor;
};

HandleStats& Stats() {
  static HandleStats stats;
  return stats;
}

// ---------------------------------------------------------------- handle

Napi::Function TensorHandle::Init(Napi::Env env) {
  return DefineClass(env, "TensorHandle",
                     {InstanceMethod("dispose", &TensorHandle::Dispose),
                      InstanceMethod("isDisposed", &TensorHandle::IsDisposed)});
}

TensorHandle::TensorHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorHandle>(info) {}

TensorHandle::~TensorHandle() {
  if (!released_) Release(Env());
}

void TensorHandle::Release(Napi::Env env) {
  if (released_) return;
  released_ = true;
  tensor = torch::Tensor();
  Stats().live -= 1;
  Stats().bytes -= reportedBytes_;
  if (reportedBytes_ != 0) Napi::MemoryManagement::AdjustExternalMemory(env, -reportedBytes_);
  reportedBytes_ = 0;
}

Napi::Object TensorHandle::Wrap(Napi::Env env, torch::Tensor t) {
  auto* data = env.GetInstanceData<InstanceData>();
  Napi::Object obj = data->tensorCtor.New({});
  auto* h = Napi::ObjectWrap<TensorHandle>::Unwrap(obj);
  // Count only fresh storage (one owner), so views of a big weight do not
  // inflate what V8 believes we hold.
  int64_t bytes = 0;
  if (t.defined() && t.has_storage() && t.storage().use_count() == 1)
    bytes = static_cast<int64_t>(t.storage().nbytes());
  h->tensor = std::move(t);
  h->reportedBytes_ = bytes;
  Stats().live += 1;
  Stats().bytes += bytes;
  if (bytes != 0) Napi::MemoryManagement::AdjustExternalMemory(env, bytes);
  return obj;
}

bool TensorHandle::IsHandle(const Napi::Value& v) {
  if (!v.IsObject()) return false;
  auto* data = v.Env().GetInstanceData<InstanceData>();
  return v.As<Napi::Object>().InstanceOf(data->tensorCtor.Value());
}

torch::Tensor& TensorHandle::Get(const Napi::Value& v, const char* what) {
  if (!IsHandle(v)) throw Napi::TypeError::New(v.Env(), std::string(what) + ": expected a tensor");
  auto* h = Napi::ObjectWrap<TensorHandle>::Unwrap(v.As<Napi::Object>());
  if (h->released_) throw Napi::Error::New(v.Env(), std::string(what) + ": tensor was already disposed");
  return h->tensor;
}

Napi::Value TensorHandle::Dispose(const Napi::CallbackInfo& info) {
  Release(info.Env());
  return info.Env().Undefined();
}

Napi::Value TensorHandle::IsDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), released_);
}

// ---------------------------------------------------------------- helpers

torch::ScalarType ParseDtype(const Napi::Value& v) {
  std::string s = v.ToString().Utf8Value();
  if (s == "float32") return torch::kFloat32;
  if (s == "float64") return torch::kFloat64;
  if (s == "bfloat16") return torch::kBFloat16;
  if (s == "float16") return torch::kFloat16;
  if (s == "int64") return torch::kInt64;
  if (s == "int32") return torch::kInt32;
  if (s == "bool") return torch::kBool;
  if (s == "uint8") return torch::kUInt8;
  if (s == "int16") return torch::kInt16;
  if (s == "int8") return torch::kInt8;
  throw Napi::TypeError::New(v.Env(), "unknown dtype '" + s +
                                          "' (expected float32, float64, bfloat16, float16, int64, int32, int16, int8, bool, uint8)");
}

std::string DtypeName(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32: return "float32";
    case torch::kFloat64: return "float64";
    case torch::kBFloat16: return "bfloat16";
    case torch::kFloat16: return "float16";
    case torch::kInt64: return "int64";
    case torch::kInt32: return "int32";
    case torch::kBool: return "bool";
    case torch::kUInt8: return "uint8";
    case torch::kInt16: return "int16";
    case torch::kInt8: return "int8";
    default: return c10::toString(t);
  }
}

std::vector<int64_t> ToShape(const Napi::Value& v, const char* what) {
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), std::string(what) + ": expected an array of integers");
  auto arr = v.As<Napi::Array>();
  std::vector<int64_t> out(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value e = arr.Get(i);
    if (!e.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string(what) + ": expected an array of integers");
    out[i] = e.As<Napi::Number>().Int64Value();
  }
  return out;
}


torch::Tensor ScalarOrTensor(const Napi::Value& v, const torch::Tensor& like) {
  if (v.IsNumber()) return torch::scalar_tensor(v.As<Napi::Number>().DoubleValue(), like.options());
  return TensorHandle::Get(v, "operand");
}

torch::Device ParseDevice(const Napi::Value& v) {
  std::string s = v.ToString().Utf8Value();
  return torch::Device(s);
}

std::vector<torch::Tensor> ToTensorList(const Napi::Value& v, const char* what) {
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), std::string(what) + ": expected an array of tensors");
  auto arr = v.As<Napi::Array>();
  std::vector<torch::Tensor> out;
  out.reserve(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); ++i) out.push_back(TensorHandle::Get(arr.Get(i), what));
  return out;
}

Napi::Array FromTensorList(Napi::Env env, const std::vector<torch::Tensor>& list) {
  auto arr = Napi::Array::New(env, list.size());
  for (size_t i = 0; i < list.size(); ++i) arr.Set(static_cast<uint32_t>(i), MaybeWrap(env, list[i]));
  return arr;
}

Napi::Value MaybeWrap(Napi::Env env, const torch::Tensor& t) {
  if (!t.defined()) return env.Null();
  return TensorHandle::Wrap(env, t);
}

// ---------------------------------------------------------------- conversions

static size_t ElementSize(torch::ScalarType t) { return c10::elementSize(t); }

// fromBuffer(typedArray, shape, dtype): copies the bytes into a new CPU tensor.
static Napi::Value FromBuffer(const Napi::CallbackInfo& info) {
  if (!info[0].IsTypedArray()) throw Napi::TypeError::New(info.Env(), "fromBuffer: expected a TypedArray");
  auto arr = info[0].As<Napi::TypedArray>();
  auto shape = ToShape(info[1], "fromBuffer shape");
  auto dtype = ParseDtype(info[2]);
  int64_t numel = 1;
  for (auto s : shape) {
    if (s < 0) throw Napi::RangeError::New(info.Env(), "fromBuffer: negative dimension in shape");
    numel *= s;
  }
  size_t need = static_cast<size_t>(numel) * ElementSize(dtype);
  if (arr.ByteLength() != need)
    throw Napi::RangeError::New(info.Env(), "fromBuffer: " + std::to_string(arr.ByteLength()) +
                                                " bytes given, shape and dtype need " + std::to_string(need));
  auto t = torch::empty(shape, torch::TensorOptions().dtype(dtype));
  uint8_t* src = static_cast<uint8_t*>(arr.ArrayBuffer().Data()) + arr.ByteOffset();
  if (need) std::memcpy(t.data_ptr(), src, need);
  return TensorHandle::Wrap(info.Env(), t);
}

// fromFile(path, byteOffset, shape, dtype): reads straight into tensor memory,
// so loading a checkpoint never holds a second copy in JS buffers.
static Napi::Value FromFile(const Napi::CallbackInfo& info) {
  std::string path = info[0].ToString().Utf8Value();
  int64_t offset = I(info, 1);
  auto shape = ToShape(info[2], "fromFile shape");
  auto dtype = ParseDtype(info[3]);
  auto t = torch::empty(shape, torch::TensorOptions().dtype(dtype));
  size_t need = static_cast<size_t>(t.numel()) * ElementSize(dtype);
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw Napi::Error::New(info.Env(), path + ": cannot open for reading");
  size_t got = 0;
  if (fseeko(f, offset, SEEK_SET) == 0 && need) got = std::fread(t.data_ptr(), 1, need, f);
  std::fclose(f);
  if (got != need)
    throw Napi::Error::New(info.Env(), path + ": expected " + std::to_string(need) + " bytes at offset " +
                                           std::to_string(offset) + ", read " + std::to_string(got));
  return TensorHandle::Wrap(info.Env(), t);
}

// toBuffer(t): a copy of the (contiguous, CPU) bytes as an ArrayBuffer.
static Napi::Value ToBuffer(const Napi::CallbackInfo& info) {
  auto t = T(info, 0).detach().to(torch::kCPU).contiguous();
  size_t n = static_cast<size_t>(t.numel()) * t.element_size();
  auto buf = Napi::ArrayBuffer::New(info.Env(), n);
  if (n) std::memcpy(buf.Data(), t.data_ptr(), n);
  return buf;
}

static Napi::Value WriteToFile(const Napi::CallbackInfo& info) {
  // writeToFile(t, fd-less path, append): appends raw bytes to a file; used by
  // the safetensors writer so large tensors never pass through JS memory.
  auto t = T(info, 0).detach().to(torch::kCPU).contiguous();
  std::string path = info[1].ToString().Utf8Value();
  FILE* f = std::fopen(path.c_str(), "ab");
  if (!f) throw Napi::Error::New(info.Env(), path + ": cannot open for writing");
  size_t n = static_cast<size_t>(t.numel()) * t.element_size();
  size_t put = n ? std::fwrite(t.data_ptr(), 1, n, f) : 0;
  int closed = std::fclose(f);
  if (put != n || closed != 0) throw Napi::Error::New(info.Env(), path + ": write failed (disk full?)");
  return info.Env().Undefined();
}

static Napi::Value Info(const Napi::CallbackInfo& info) {
  auto& t = T(info, 0);
  auto env = info.Env();
  auto obj = Napi::Object::New(env);
  auto shape = Napi::Array::New(env, t.dim());
  for (int64_t i = 0; i < t.dim(); ++i) shape.Set(static_cast<uint32_t>(i), Napi::Number::New(env, t.size(i)));
  obj.Set("shape", shape);
  obj.Set("dtype", DtypeName(t.scalar_type()));
  obj.Set("device", t.device().str());
  obj.Set("requiresGrad", t.requires_grad());
  return obj;
}

// ---------------------------------------------------------------- settings

static Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  int n = static_cast<int>(I(info, 0));
  if (n < 1) throw Napi::RangeError::New(info.Env(), "setNumThreads: need at least 1 thread");
  torch::set_num_threads(n);
  return info.Env().Undefined();
}
static Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), torch::get_num_threads());
}
static Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  torch::manual_seed(static_cast<uint64_t>(I(info, 0)));
  return info.Env().Undefined();
}
torch::Tensor CpuRngState() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}
void SetCpuRngState(const torch::Tensor& state) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}
// The default CPU generator's state (dropout, init) as bytes, and back: for resumable training.
static Napi::Value GetRngState(const Napi::CallbackInfo& info) {
  torch::Tensor state = CpuRngState();
  return Napi::Buffer<uint8_t>::Copy(info.Env(), state.data_ptr<uint8_t>(), state.numel());
}
static Napi::Value SetRngState(const Napi::CallbackInfo& info) {
  auto buf = info[0].As<Napi::Buffer<uint8_t>>();
  SetCpuRngState(torch::from_blob(buf.Data(), {static_cast<int64_t>(buf.Length())}, torch::kUInt8).clone());
  return info.Env().Undefined();
}
static Napi::Value SetGradEnabled(const Napi::CallbackInfo& info) {
  bool prev = c10::GradMode::is_enabled();
  c10::GradMode::set_enabled(B(info, 0));
  return Napi::Boolean::New(info.Env(), prev);
}
static Napi::Value IsGradEnabled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), c10::GradMode::is_enabled());
}
static Napi::Value LiveHandles(const Napi::CallbackInfo& info) {
  auto obj = Napi::Object::New(info.Env());
  obj.Set("count", Napi::Number::New(info.Env(), static_cast<double>(Stats().live)));
  obj.Set("bytes", Napi::Number::New(info.Env(), static_cast<double>(Stats().bytes)));
  return obj;
}

static int CollectBlas(struct dl_phdr_info* info, size_t, void* data) {
  auto* out = static_cast<std::string*>(data);
  std::string name = info->dlpi_name ? info->dlpi_name : "";
  if (name.find("blas") != std::string::npos || name.find("mkl") != std::string::npos) {
    if (!out->empty()) *out += ";";
    *out += name;
  }
  return 0;
}

// Which BLAS libraries got loaded: the OpenMP OpenBLAS is ~30x faster here
// than the reference BLAS, and the pthread build fights torch's threads.
static Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto obj = Napi::Object::New(env);
  obj.Set("torchVersion", TORCH_VERSION);
  obj.Set("cudaAvailable", torch::cuda::is_available());
  obj.Set("cudaDeviceCount", Napi::Number::New(env, static_cast<double>(torch::cuda::device_count())));
  std::string blas;
  dl_iterate_phdr(CollectBlas, &blas);
  obj.Set("blasLibraries", blas);
  obj.Set("parallelInfo", at::get_parallel_info());
  return obj;
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InstallCpuAllocator();
  auto* data = new InstanceData();
  Napi::Function ctor = TensorHandle::Init(env);
  data->tensorCtor = Napi::Persistent(ctor);
  env.SetInstanceData(data);
  exports.Set("TensorHandle", ctor);
  exports.Set("AdamW", InitAdamW(env));

  Registry r{env, exports};
  r.add<FromBuffer>("fromBuffer");
  r.add<FromFile>("fromFile");
  r.add<ToBuffer>("toBuffer");
  r.add<WriteToFile>("writeToFile");
  r.add<Info>("info");
  r.add<SetNumThreads>("setNumThreads");
  r.add<GetNumThreads>("getNumThreads");
  r.add<ManualSeed>("manualSeed");
  r.add<GetRngState>("getRngState");
  r.add<SetRngState>("setRngState");
  r.add<SetGradEnabled>("setGradEnabled");
  r.add<IsGradEnabled>("isGradEnabled");
  r.add<LiveHandles>("liveHandles");
  r.add<BuildInfo>("buildInfo");
  RegisterTensorOps(r);
  RegisterAutogradOps(r);
  RegisterSparseDeltaLinear(r);
  RegisterCpuAllocator(r);
  RegisterFrozenOps(r);
  RegisterCheckpoint(r);
  return exports;
}

}  // namespace randmask

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return randmask::Init(env, exports); }
NODE_API_MODULE(randmask_native, InitModule)
