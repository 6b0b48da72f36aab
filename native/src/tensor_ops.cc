// Tensor creation and the differentiable ops a transformer and its training
// need. Each is a one-line forward to libtorch; all logic lives in TypeScript.
#include "common.h"

namespace randmask {

#define OP(name) static Napi::Value name(const Napi::CallbackInfo& info)
#define WRAP(expr) return TensorHandle::Wrap(info.Env(), (expr))

static torch::TensorOptions Opts(const Napi::CallbackInfo& info, size_t dtypeArg, size_t deviceArg) {
  auto o = torch::TensorOptions().dtype(ParseDtype(info[dtypeArg]));
  if (info.Length() > deviceArg && info[deviceArg].IsString()) o = o.device(ParseDevice(info[deviceArg]));
  return o;
}

// A JS number as a Scalar: integral values stay integral so that int64
// tensors are not promoted to float by arithmetic with a literal.
static c10::Scalar S(const Napi::CallbackInfo& info, size_t i) {
  double v = D(info, i);
  if (std::nearbyint(v) == v && std::abs(v) < 9.0e15) return c10::Scalar(static_cast<int64_t>(v));
  return c10::Scalar(v);
}

static std::vector<int64_t> Dims(const Napi::CallbackInfo& info, size_t i) {
  if (info[i].IsNumber()) return {info[i].As<Napi::Number>().Int64Value()};
  return ToShape(info[i], "dims");
}

// ------------------------------------------------------------ creation
OP(Full) { WRAP(torch::full(ToShape(info[0], "full shape"), S(info, 1), Opts(info, 2, 3))); }
OP(Arange) { WRAP(torch::arange(S(info, 0), S(info, 1), S(info, 2), Opts(info, 3, 4))); }
OP(Randn) { WRAP(torch::randn(ToShape(info[0], "randn shape"), Opts(info, 1, 2))); }
OP(Rand) { WRAP(torch::rand(ToShape(info[0], "rand shape"), Opts(info, 1, 2))); }

// ------------------------------------------------------------ moves and views
OP(To) {
  auto& t = T(info, 0);
  auto o = t.options();
  if (info[1].IsString()) o = o.dtype(ParseDtype(info[1]));
  if (info[2].IsString()) o = o.device(ParseDevice(info[2]));
  WRAP(t.to(o));
}
OP(Contiguous) { WRAP(T(info, 0).contiguous()); }
OP(Clone) { WRAP(T(info, 0).clone()); }
OP(Detach) { WRAP(T(info, 0).detach()); }
OP(Reshape) { WRAP(T(info, 0).reshape(ToShape(info[1], "reshape shape"))); }
OP(Transpose) { WRAP(T(info, 0).transpose(I(info, 1), I(info, 2))); }
OP(Permute) { WRAP(T(info, 0).permute(ToShape(info[1], "permute dims"))); }
OP(Expand) { WRAP(T(info, 0).expand(ToShape(info[1], "expand shape"))); }
OP(Unsqueeze) { WRAP(T(info, 0).unsqueeze(I(info, 1))); }
OP(Squeeze) { WRAP(T(info, 0).squeeze(I(info, 1))); }
OP(Narrow) { WRAP(T(info, 0).narrow(I(info, 1), I(info, 2), I(info, 3))); }
// asStrided(t, size, stride, offset): a view of t's storage (checkpoint readers
// materialise non-contiguous saved tensors with it; bounds are checked by the caller and libtorch).
OP(AsStrided) { WRAP(T(info, 0).as_strided(ToShape(info[1], "asStrided size"), ToShape(info[2], "asStrided stride"), I(info, 3))); }
OP(Select) { WRAP(T(info, 0).select(I(info, 1), I(info, 2))); }
OP(Cat) { WRAP(torch::cat(ToTensorList(info[0], "cat inputs"), I(info, 1))); }
OP(Stack) { WRAP(torch::stack(ToTensorList(info[0], "stack inputs"), I(info, 1))); }
OP(Tril) { WRAP(T(info, 0).tril(I(info, 1))); }
OP(Triu) { WRAP(T(info, 0).triu(I(info, 1))); }

// ------------------------------------------------------------ elementwise
OP(Add) {
  auto& a = T(info, 0);
  c10::Scalar alpha = info[2].IsNumber() ? S(info, 2) : c10::Scalar(int64_t{1});
  if (info[1].IsNumber()) WRAP(torch::add(a, S(info, 1), alpha));
  WRAP(torch::add(a, T(info, 1), alpha));
}
OP(Sub) {
  auto& a = T(info, 0);
  if (info[1].IsNumber()) WRAP(torch::sub(a, S(info, 1)));
  WRAP(torch::sub(a, T(info, 1)));
}
OP(Mul) {
  auto& a = T(info, 0);
  if (info[1].IsNumber()) WRAP(torch::mul(a, S(info, 1)));
  WRAP(torch::mul(a, T(info, 1)));
}
OP(Div) {
  auto& a = T(info, 0);
  if (info[1].IsNumber()) WRAP(torch::div(a, S(info, 1)));
  WRAP(torch::div(a, T(info, 1)));
}
OP(Pow) {
  auto& a = T(info, 0);
  if (info[1].IsNumber()) WRAP(torch::pow(a, S(info, 1)));
  WRAP(torch::pow(a, T(info, 1)));
}
OP(Maximum) { WRAP(torch::maximum(T(info, 0), ScalarOrTensor(info[1], T(info, 0)))); }
OP(Minimum) { WRAP(torch::minimum(T(info, 0), ScalarOrTensor(info[1], T(info, 0)))); }
OP(Neg) { WRAP(torch::neg(T(info, 0))); }
OP(Exp) { WRAP(torch::exp(T(info, 0))); }
OP(Log) { WRAP(torch::log(T(info, 0))); }
OP(Sqrt) { WRAP(torch::sqrt(T(info, 0))); }
OP(Rsqrt) { WRAP(torch::rsqrt(T(info, 0))); }
OP(Abs) { WRAP(torch::abs(T(info, 0))); }
OP(Tanh) { WRAP(torch::tanh(T(info, 0))); }
OP(Sigmoid) { WRAP(torch::sigmoid(T(info, 0))); }
OP(Relu) { WRAP(torch::relu(T(info, 0))); }
OP(Gelu) { WRAP(torch::gelu(T(info, 0), B(info, 1) ? "tanh" : "none")); }
OP(Clamp) {
  auto& t = T(info, 0);
  c10::optional<c10::Scalar> lo, hi;
  if (info[1].IsNumber()) lo = D(info, 1);
  if (info[2].IsNumber()) hi = D(info, 2);
  WRAP(torch::clamp(t, lo, hi));
}
OP(IsFinite) { WRAP(torch::isfinite(T(info, 0))); }

// ------------------------------------------------------------ comparisons
#define CMP(name, fn)                                           \
  OP(name) {                                                    \
    auto& a = T(info, 0);                                       \
    if (info[1].IsNumber()) WRAP(torch::fn(a, S(info, 1)));     \
    WRAP(torch::fn(a, T(info, 1)));                             \
  }
CMP(Eq, eq)
CMP(Ne, ne)
CMP(Lt, lt)
CMP(Le, le)
CMP(Gt, gt)
CMP(Ge, ge)
OP(LogicalNot) { WRAP(torch::logical_not(T(info, 0))); }
OP(LogicalAnd) { WRAP(torch::logical_and(T(info, 0), T(info, 1))); }
OP(Where) {
  auto& cond = T(info, 0);
  if (info[1].IsNumber() && info[2].IsNumber())
    throw Napi::TypeError::New(info.Env(), "where: at least one branch must be a tensor");
  torch::Tensor a, b;
  if (!info[1].IsNumber()) {
    a = T(info, 1);
    b = ScalarOrTensor(info[2], a);
  } else {
    b = T(info, 2);
    a = ScalarOrTensor(info[1], b);
  }
  WRAP(torch::where(cond, a, b));
}
OP(MaskedFill) { WRAP(T(info, 0).masked_fill(T(info, 1), S(info, 2))); }

// ------------------------------------------------------------ reductions
OP(Sum) {
  auto& t = T(info, 0);
  if (info[1].IsUndefined() || info[1].IsNull()) WRAP(t.sum());
  WRAP(t.sum(Dims(info, 1), B(info, 2)));
}
OP(Mean) {
  auto& t = T(info, 0);
  if (info[1].IsUndefined() || info[1].IsNull()) WRAP(t.mean());
  WRAP(t.mean(Dims(info, 1), B(info, 2)));
}
OP(Amax) { WRAP(T(info, 0).amax(Dims(info, 1), B(info, 2))); }
OP(Argmax) { WRAP(T(info, 0).argmax(I(info, 1), B(info, 2))); }
OP(Logsumexp) { WRAP(T(info, 0).logsumexp(Dims(info, 1), B(info, 2))); }
OP(Norm) { WRAP(T(info, 0).norm()); }
OP(Cumsum) { WRAP(T(info, 0).cumsum(I(info, 1))); }
OP(Softmax) { WRAP(torch::softmax(T(info, 0), I(info, 1))); }
OP(LogSoftmax) { WRAP(torch::log_softmax(T(info, 0), I(info, 1))); }

// ------------------------------------------------------------ linear algebra
OP(Linear) {
  auto& x = T(info, 0);
  auto& w = T(info, 1);
  if (info[2].IsNull() || info[2].IsUndefined()) WRAP(torch::linear(x, w));
  WRAP(torch::linear(x, w, T(info, 2)));
}
OP(Matmul) { WRAP(torch::matmul(T(info, 0), T(info, 1))); }
OP(Bmm) { WRAP(torch::bmm(T(info, 0), T(info, 1))); }
OP(Baddbmm) { WRAP(torch::baddbmm(T(info, 0), T(info, 1), T(info, 2), D(info, 3), D(info, 4))); }
// linalgEigh(A[..., n, n]) -> [eigenvalues ascending [..., n], eigenvectors as columns [..., n, n]];
// reads the lower triangle, like torch.linalg.eigh(A, UPLO="L").
OP(LinalgEigh) {
  auto res = torch::linalg_eigh(T(info, 0), "L");
  return FromTensorList(info.Env(), {std::get<0>(res), std::get<1>(res)});
}

// ------------------------------------------------------------ nn
OP(LayerNorm) {
  auto& x = T(info, 0);
  auto shape = ToShape(info[1], "layerNorm normalizedShape");
  c10::optional<torch::Tensor> w, b;
  if (!info[2].IsNull() && !info[2].IsUndefined()) w = T(info, 2);
  if (!info[3].IsNull() && !info[3].IsUndefined()) b = T(info, 3);
#if TORCH_VERSION_MAJOR < 2
  // libtorch 1.x's CPU layer norm in bfloat16/float16 is ~3× slower forward + backward than in
  // float32 (measured, [512, 768]); 2.x computes it in float internally at full speed. Normalising
  // in float32 and rounding once gives the same values (within one rounding) faster.
  auto st = x.scalar_type();
  if (x.device().is_cpu() && (st == torch::kBFloat16 || st == torch::kHalf)) {
    auto up = [](const c10::optional<torch::Tensor>& t) { return t ? c10::optional<torch::Tensor>(t->to(torch::kFloat)) : t; };
    WRAP(torch::layer_norm(x.to(torch::kFloat), shape, up(w), up(b), D(info, 4)).to(st));
  }
#endif
  WRAP(torch::layer_norm(x, shape, w, b, D(info, 4)));
}
OP(Embedding) { WRAP(torch::embedding(T(info, 0), T(info, 1))); }
OP(Dropout) { WRAP(torch::dropout(T(info, 0), D(info, 1), B(info, 2))); }
// crossEntropy(logits[N,C], targets[N], ignoreIndex, reduction: 0 none 1 mean 2 sum)
OP(CrossEntropy) {
  WRAP(torch::cross_entropy_loss(T(info, 0), T(info, 1), {}, I(info, 3), I(info, 2)));
}

// ------------------------------------------------------------ indexing
OP(IndexSelect) { WRAP(torch::index_select(T(info, 0), I(info, 1), T(info, 2))); }
OP(Gather) { WRAP(torch::gather(T(info, 0), I(info, 1), T(info, 2))); }
OP(ScatterAdd) { WRAP(torch::scatter_add(T(info, 0), I(info, 1), T(info, 2), T(info, 3))); }
OP(IndexAdd) { WRAP(torch::index_add(T(info, 0), I(info, 1), T(info, 2), T(info, 3))); }
// indexPut(t, [indices...], values, accumulate): out-of-place t[indices] = values
OP(IndexPut) {
  auto list = ToTensorList(info[1], "indexPut indices");
  c10::List<c10::optional<torch::Tensor>> idx;
  for (auto& t : list) idx.push_back(t);
  WRAP(T(info, 0).index_put(idx, T(info, 2), B(info, 3)));
}
OP(Sort) {
  auto res = torch::sort(T(info, 0), I(info, 1), B(info, 2));
  return FromTensorList(info.Env(), {std::get<0>(res), std::get<1>(res)});
}
OP(Topk) {
  auto res = torch::topk(T(info, 0), I(info, 1), I(info, 2));
  return FromTensorList(info.Env(), {std::get<0>(res), std::get<1>(res)});
}

// ------------------------------------------------------------ in place (no autograd: optimizer/state updates)
OP(Copy_) {
  torch::NoGradGuard g;
  T(info, 0).copy_(T(info, 1));
  return info.Env().Undefined();
}
OP(Zero_) {
  torch::NoGradGuard g;
  T(info, 0).zero_();
  return info.Env().Undefined();
}
OP(Mul_) {
  torch::NoGradGuard g;
  T(info, 0).mul_(D(info, 1));
  return info.Env().Undefined();
}
OP(AddScaled_) {
  // t += alpha * other
  torch::NoGradGuard g;
  T(info, 0).add_(T(info, 1), D(info, 2));
  return info.Env().Undefined();
}
OP(IndexAdd_) {
  torch::NoGradGuard g;
  T(info, 0).index_add_(I(info, 1), T(info, 2), T(info, 3));
  return info.Env().Undefined();
}

// ------------------------------------------------------------ readback
OP(Item) {
  auto& t = T(info, 0);
  if (t.numel() != 1)
    throw Napi::Error::New(info.Env(), "item: tensor has " + std::to_string(t.numel()) + " elements, expected 1");
  return Napi::Number::New(info.Env(), t.item<double>());
}
OP(AllClose) {
  return Napi::Boolean::New(info.Env(), torch::allclose(T(info, 0), T(info, 1), D(info, 2), D(info, 3)));
}
OP(Equal) { return Napi::Boolean::New(info.Env(), torch::equal(T(info, 0), T(info, 1))); }

void RegisterTensorOps(Registry& r) {
  r.add<Full>("full");
  r.add<Arange>("arange");
  r.add<Randn>("randn");
  r.add<Rand>("rand");
  r.add<To>("to");
  r.add<Contiguous>("contiguous");
  r.add<Clone>("clone");
  r.add<Detach>("detach");
  r.add<Reshape>("reshape");
  r.add<Transpose>("transpose");
  r.add<Permute>("permute");
  r.add<Expand>("expand");
  r.add<Unsqueeze>("unsqueeze");
  r.add<Squeeze>("squeeze");
  r.add<Narrow>("narrow");
  r.add<Select>("select");
  r.add<AsStrided>("asStrided");
  r.add<Cat>("cat");
  r.add<Stack>("stack");
  r.add<Tril>("tril");
  r.add<Triu>("triu");
  r.add<Add>("add");
  r.add<Sub>("sub");
  r.add<Mul>("mul");
  r.add<Div>("div");
  r.add<Pow>("pow");
  r.add<Maximum>("maximum");
  r.add<Minimum>("minimum");
  r.add<Neg>("neg");
  r.add<Exp>("exp");
  r.add<Log>("log");
  r.add<Sqrt>("sqrt");
  r.add<Rsqrt>("rsqrt");
  r.add<Abs>("abs");
  r.add<Tanh>("tanh");
  r.add<Sigmoid>("sigmoid");
  r.add<Relu>("relu");
  r.add<Gelu>("gelu");
  r.add<Clamp>("clamp");
  r.add<IsFinite>("isfinite");
  r.add<Eq>("eq");
  r.add<Ne>("ne");
  r.add<Lt>("lt");
  r.add<Le>("le");
  r.add<Gt>("gt");
  r.add<Ge>("ge");
  r.add<LogicalNot>("logicalNot");
  r.add<LogicalAnd>("logicalAnd");
  r.add<Where>("where");
  r.add<MaskedFill>("maskedFill");
  r.add<Sum>("sum");
  r.add<Mean>("mean");
  r.add<Amax>("amax");
  r.add<Argmax>("argmax");
  r.add<Logsumexp>("logsumexp");
  r.add<Norm>("norm");
  r.add<Cumsum>("cumsum");
  r.add<Softmax>("softmax");
  r.add<LogSoftmax>("logSoftmax");
  r.add<Linear>("linear");
  r.add<Matmul>("matmul");
  r.add<Bmm>("bmm");
  r.add<Baddbmm>("baddbmm");
  r.add<LinalgEigh>("linalgEigh");
  r.add<LayerNorm>("layerNorm");
  r.add<Embedding>("embedding");
  r.add<Dropout>("dropout");
  r.add<CrossEntropy>("crossEntropy");
  r.add<IndexSelect>("indexSelect");
  r.add<Gather>("gather");
  r.add<ScatterAdd>("scatterAdd");
  r.add<IndexAdd>("indexAdd");
  r.add<IndexPut>("indexPut");
  r.add<Sort>("sort");
  r.add<Topk>("topk");
  r.add<Copy_>("copy_");
  r.add<Zero_>("zero_");
  r.add<Mul_>("mul_");
  r.add<AddScaled_>("addScaled_");
  r.add<IndexAdd_>("indexAdd_");
  r.add<Item>("item");
  r.add<AllClose>("allclose");
  r.add<Equal>("equal");
}

}  // namespace randmask
