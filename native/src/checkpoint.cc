// Activation checkpointing (reentrant, like torch.utils.checkpoint): the
// forward runs a JS function without recording a graph and keeps only its
// input; backward runs the function again with the graph on and
// backpropagates through that recomputation. CPU backward runs on the calling
// (JS) thread, so calling back into JS from backward is safe.
//
// Like torch.utils.checkpoint(preserve_rng_state=True), the recompute starts
// from the CPU generator's state at forward time and the generator is put back
// afterwards, so random ops (dropout) repeat their draws and the recompute
// leaves no trace in the random stream the rest of training sees.
#include <unordered_map>

#include "common.h"

namespace randmask {
namespace {

// Recompute functions by id, from forward until their backward has run. A graph
// dropped without backward leaves its (small) closure here; the trainer only
// checkpoints when a backward follows.
struct Callbacks {
  Napi::Env env = nullptr;
  std::unordered_map<int64_t, Napi::FunctionReference> fns;
  int64_t next = 0;
};

Callbacks& Callbacks_() {
  static Callbacks* c = new Callbacks();
  return *c;
}

torch::Tensor CallJs(int64_t id, const torch::Tensor& input) {
  auto& r = Callbacks_();
  auto it = r.fns.find(id);
  if (it == r.fns.end()) throw std::runtime_error("checkpoint: the recompute function is gone");
  Napi::Object in = TensorHandle::Wrap(r.env, input);
  Napi::Value out = it->second.Call({in});
  torch::Tensor result = TensorHandle::Get(out, "checkpoint function result");
  // Drop the JS handles now: a live handle to the output would keep the whole
  // recomputed graph (all of the layer's activations) until the caller's scope ends.
  for (Napi::Value v : {static_cast<Napi::Value>(in), out}) {
    auto obj = v.As<Napi::Object>();
    obj.Get("dispose").As<Napi::Function>().Call(obj, {});
  }
  return result;
}

class CheckpointFn : public torch::autograd::Function<CheckpointFn> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& input, int64_t id) {
    ctx->save_for_backward({input});
    ctx->saved_data["id"] = id;
    ctx->saved_data["rng"] = CpuRngState();
    return CallJs(id, input.detach());
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list gradOutputs) {
    int64_t id = ctx->saved_data["id"].toInt();
    auto input = ctx->get_saved_variables()[0].detach().requires_grad_(true);
    torch::Tensor out;
    {
      torch::Tensor outer = CpuRngState();
      SetCpuRngState(ctx->saved_data["rng"].toTensor());
      torch::AutoGradMode enable(true);
      try {
        out = CallJs(id, input);
      } catch (...) {
        SetCpuRngState(outer);
        throw;
      }
      SetCpuRngState(outer);
    }
    Callbacks_().fns.erase(id);
    torch::autograd::backward({out}, {gradOutputs[0]});
    return {input.grad(), torch::Tensor()};
  }
};

}  // namespace

// checkpoint(fn, input): fn(handle) → handle, run now without a graph and again in backward.
static Napi::Value Checkpoint(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) throw Napi::TypeError::New(info.Env(), "checkpoint: expected a function");
  auto& input = T(info, 1);
  if (!input.requires_grad()) throw std::invalid_argument("checkpoint: the input must require grad");
  auto& r = Callbacks_();
  r.env = info.Env();
  int64_t id = r.next++;
  r.fns[id] = Napi::Persistent(info[0].As<Napi::Function>());
  return TensorHandle::Wrap(info.Env(), CheckpointFn::apply(input, id));
}

void RegisterCheckpoint(Registry& reg) { reg.add<Checkpoint>("checkpoint"); }

}  // namespace randmask
