// The Random Masking kernel: y = x·(W + S)ᵀ + b, where S is a sparse delta
// given by flat indices into W and a values vector. W (and usually b) are
// frozen; the gradient of the values is a sampled dense-dense product (SDDMM)
// dValues[k] = Σ_t dY[t,row_k]·X[t,col_k], never a dense gradient of W's size.
//
// Two layouts, picked by cost: when nnz·T is below W's size the sparse part is
// applied as gathered columns (no W-sized temporary at all); otherwise W + S is
// formed once per call (a copy of W, not a gradient) and used in one matmul.
// The backward is written in differentiable ops, so double backward works.
#include "common.h"

namespace randmask {
namespace {

// Bounds the gathered [T, chunk] temporaries to ~16 MiB of fp32.
constexpr int64_t kChunkElements = int64_t{1} << 22;

int64_t ChunkFor(int64_t tokens) { return std::max<int64_t>(1, kChunkElements / std::max<int64_t>(tokens, 1)); }

template <typename T>
using Acc = std::conditional_t<std::is_same<T, double>::value, double, float>;

// CPU kernels for the common case (no double backward): no [T, nnz]
// temporaries, one pass over the data, parallel over independent outputs.

// out[k] = Σ_t a[t, rows[k]] · b[t, cols[k]]. Streams the rows of a and b
// once (one row of each sits in L1 while all nnz terms are accumulated);
// each thread keeps its own partial sums over its share of the tokens.
torch::Tensor SddmmCpu(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& rows,
                       const torch::Tensor& cols) {
  auto ac = a.contiguous();
  auto bc = b.contiguous();
  auto r = rows.contiguous();
  auto c = cols.contiguous();
  int64_t nnz = r.numel();
  int64_t tokens = ac.size(0);
  int64_t aCols = ac.size(1);
  int64_t bCols = bc.size(1);
  // One slice of the tokens per thread, each with its own row of partial sums (indexed by slice,
  // not by OpenMP thread id, so the buffer's size never depends on the runtime's team size).
  int64_t slices = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), tokens));
  int64_t perSlice = (tokens + slices - 1) / slices;
  auto accType = a.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  auto partial = torch::zeros({slices, nnz}, a.options().dtype(accType));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::ScalarType::BFloat16, at::ScalarType::Half, a.scalar_type(), "sddmm_cpu", [&] {
    using acc_t = Acc<scalar_t>;
    const scalar_t* pa = ac.data_ptr<scalar_t>();
    const scalar_t* pb = bc.data_ptr<scalar_t>();
    const int64_t* pr = r.data_ptr<int64_t>();
    const int64_t* pc = c.data_ptr<int64_t>();
    acc_t* pp = partial.data_ptr<acc_t>();
    at::parallel_for(0, slices, 1, [&](int64_t firstSlice, int64_t lastSlice) {
      for (int64_t s = firstSlice; s < lastSlice; ++s) {
        acc_t* acc = pp + s * nnz;
        for (int64_t t = s * perSlice; t < std::min(tokens, (s + 1) * perSlice); ++t) {
          const scalar_t* ar = pa + t * aCols;
          const scalar_t* br = pb + t * bCols;
          for (int64_t k = 0; k < nnz; ++k) acc[k] += static_cast<acc_t>(ar[pr[k]]) * static_cast<acc_t>(br[pc[k]]);
        }
      }
    });
  });
  return partial.sum(0).to(a.scalar_type());
}

// The same sum with both operands transposed once ([out, T] and [in, T], in the
// accumulation type): each entry is then a contiguous dot product over the tokens,
// which the compiler vectorises, instead of one scattered multiply-add per (token,
// entry). The two transposes cost (out + in)·T copies, so it pays for larger nnz.
torch::Tensor SddmmTransposedCpu(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& rows,
                                 const torch::Tensor& cols) {
  auto accType = a.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  auto at = a.t().to(accType).contiguous();
  auto bt = b.t().to(accType).contiguous();
  auto r = rows.contiguous();
  auto c = cols.contiguous();
  int64_t nnz = r.numel();
  int64_t tokens = at.size(1);
  auto out = torch::empty({nnz}, at.options());
  AT_DISPATCH_FLOATING_TYPES(at.scalar_type(), "sddmm_transposed_cpu", [&] {
    const scalar_t* pa = at.data_ptr<scalar_t>();
    const scalar_t* pb = bt.data_ptr<scalar_t>();
    const int64_t* pr = r.data_ptr<int64_t>();
    const int64_t* pc = c.data_ptr<int64_t>();
    scalar_t* po = out.data_ptr<scalar_t>();
    constexpr int64_t kLanes = 8;  // independent partial sums: lets the loop vectorise without reassociation
    at::parallel_for(0, nnz, std::max<int64_t>(1, 16384 / std::max<int64_t>(tokens, 1)), [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) {
        const scalar_t* x = pa + pr[k] * tokens;
        const scalar_t* y = pb + pc[k] * tokens;
        scalar_t lane[kLanes] = {};
        int64_t t = 0;
        for (; t + kLanes <= tokens; t += kLanes)
          for (int64_t j = 0; j < kLanes; ++j) lane[j] += x[t + j] * y[t + j];
        scalar_t sum = 0;
        for (; t < tokens; ++t) sum += x[t] * y[t];
        for (int64_t j = 0; j < kLanes; ++j) sum += lane[j];
        po[k] = sum;
      }
    });
  });
  return out.to(a.scalar_type());
}

// y[t, to[k]] += x[t, from[k]] · v[k] for every row t; rows are independent.
void AddColumnsCpu(torch::Tensor& y, const torch::Tensor& x, const torch::Tensor& to, const torch::Tensor& from,
                   const torch::Tensor& v) {
  auto xc = x.contiguous();
  auto tc = to.contiguous();
  auto fc = from.contiguous();
  auto vc = v.contiguous();
  int64_t nnz = tc.numel();
  int64_t tokens = xc.size(0);
  int64_t yCols = y.size(1);
  int64_t xCols = xc.size(1);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::ScalarType::BFloat16, at::ScalarType::Half, y.scalar_type(), "add_columns_cpu", [&] {
    scalar_t* py = y.data_ptr<scalar_t>();
    const scalar_t* px = xc.data_ptr<scalar_t>();
    const int64_t* pt = tc.data_ptr<int64_t>();
    const int64_t* pf = fc.data_ptr<int64_t>();
    const scalar_t* pv = vc.data_ptr<scalar_t>();
    at::parallel_for(0, tokens, std::max<int64_t>(1, 32768 / std::max<int64_t>(nnz, 1)), [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        scalar_t* yr = py + t * yCols;
        const scalar_t* xr = px + t * xCols;
        for (int64_t k = 0; k < nnz; ++k)
          yr[pt[k]] = static_cast<scalar_t>(static_cast<Acc<scalar_t>>(yr[pt[k]]) +
                                            static_cast<Acc<scalar_t>>(xr[pf[k]]) * static_cast<Acc<scalar_t>>(pv[k]));
      }
    });
  });
}

// The raw kernels are not differentiable: use them only when no graph is being
// recorded (always in forward; in backward unless create_graph).
bool UseCpuKernels(const torch::Tensor& t) { return t.device().is_cpu() && !c10::GradMode::is_enabled(); }

// For dense-ish masks (over 1/64 of the entries) BLAS beats per-entry dot
// products: form the gradient a block of rows at a time (≤ kChunkElements
// entries, never the whole matrix) and keep the sampled entries.
constexpr int64_t kBlockedDenseFraction = 64;

torch::Tensor SddmmBlockedDense(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& rows,
                                const torch::Tensor& cols) {
  int64_t out = a.size(1);
  int64_t in = b.size(1);
  int64_t blockRows = std::max<int64_t>(1, kChunkElements / in);
  auto flat = rows * in + cols;
  std::vector<torch::Tensor> parts;
  for (int64_t r0 = 0; r0 < out; r0 += blockRows) {
    int64_t r1 = std::min(out, r0 + blockRows);
    auto lo = torch::searchsorted(rows, torch::full({1}, r0, rows.options())).item<int64_t>();
    auto hi = torch::searchsorted(rows, torch::full({1}, r1, rows.options())).item<int64_t>();
    if (hi == lo) continue;
    auto block = torch::matmul(a.narrow(1, r0, r1 - r0).t(), b);  // [r1-r0, in]
    parts.push_back(block.reshape({-1}).index_select(0, flat.narrow(0, lo, hi - lo) - r0 * in));
  }
  return parts.size() == 1 ? parts[0] : torch::cat(parts);
}

// out[k] = Σ_t a[t, rows[k]] · b[t, cols[k]]   (rows sorted ascending)
torch::Tensor Sddmm(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& rows,
                    const torch::Tensor& cols) {
  int64_t nnz = rows.numel();
  if (nnz == 0) return torch::zeros({0}, a.options());
  if (nnz * kBlockedDenseFraction > a.size(1) * b.size(1)) return SddmmBlockedDense(a, b, rows, cols);
  if (UseCpuKernels(a)) {
    // Measured (Zen 4, T = 512, 768×768, 1–2 threads): the transposes cost about as much as
    // (out + in)·T / 512 entries of the scattered kernel; beyond that the dot products win (2×).
    bool transposedPays = nnz * 512 > (a.size(1) + b.size(1)) * a.size(0);
    return transposedPays ? SddmmTransposedCpu(a, b, rows, cols) : SddmmCpu(a, b, rows, cols);
  }
  // Differentiable path (double backward, or CUDA): gather whole rows of the
  // transposes, which is far faster than gathering columns.
  auto at = a.t().contiguous();
  auto bt = b.t().contiguous();
  int64_t chunk = ChunkFor(a.size(0));
  std::vector<torch::Tensor> parts;
  for (int64_t s = 0; s < nnz; s += chunk) {
    int64_t n = std::min(chunk, nnz - s);
    auto r = rows.narrow(0, s, n);
    auto c = cols.narrow(0, s, n);
    parts.push_back((at.index_select(0, r) * bt.index_select(0, c)).sum(1));
  }
  return parts.size() == 1 ? parts[0] : torch::cat(parts);
}

// y[:, to[k]] += x[:, from[k]] · v[k]
void AddGatheredColumns(torch::Tensor& y, const torch::Tensor& x, const torch::Tensor& to,
                        const torch::Tensor& from, const torch::Tensor& v) {
  int64_t nnz = to.numel();
  if (nnz == 0) return;
  if (UseCpuKernels(y) && y.is_contiguous()) return AddColumnsCpu(y, x, to, from, v);
  int64_t chunk = ChunkFor(x.size(0));
  for (int64_t s = 0; s < nnz; s += chunk) {
    int64_t n = std::min(chunk, nnz - s);
    y.index_add_(1, to.narrow(0, s, n), x.index_select(1, from.narrow(0, s, n)) * v.narrow(0, s, n));
  }
}

bool UseSparseLayout(int64_t nnz, int64_t tokens, const torch::Tensor& w) { return nnz * tokens <= w.numel(); }

torch::Tensor MergedWeight(const torch::Tensor& w, const torch::Tensor& indices, const torch::Tensor& values) {
  return w.reshape({-1}).index_add(0, indices, values).view_as(w);
}

class SparseDeltaLinearFn : public torch::autograd::Function<SparseDeltaLinearFn> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& values, const torch::Tensor& w, const torch::Tensor& b,
                               const torch::Tensor& indices) {
    int64_t in = w.size(1);
    auto rows = indices.div(in, "floor");
    auto cols = indices.remainder(in);
    auto x2 = x.reshape({-1, in});
    // An absent bias arrives as a 0-element tensor: autograd cannot carry undefined inputs.
    bool hasBias = b.numel() > 0;
    torch::Tensor y;
    if (UseSparseLayout(indices.numel(), x2.size(0), w)) {
      y = hasBias ? torch::linear(x2, w, b) : torch::linear(x2, w);
      AddGatheredColumns(y, x2, rows, cols, values);
    } else {
      auto merged = MergedWeight(w, indices, values);
      y = hasBias ? torch::linear(x2, merged, b) : torch::linear(x2, merged);
    }
    ctx->save_for_backward({x, values});
    ctx->saved_data["w"] = w;
    ctx->saved_data["indices"] = indices;
    ctx->saved_data["rows"] = rows;
    ctx->saved_data["cols"] = cols;
    ctx->saved_data["has_bias"] = hasBias;
    auto outShape = x.sizes().vec();
    outShape.back() = w.size(0);
    return y.view(outShape);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list gradOutputs) {
    auto saved = ctx->get_saved_variables();
    auto x = saved[0];
    auto values = saved[1];
    auto w = ctx->saved_data["w"].toTensor();
    auto indices = ctx->saved_data["indices"].toTensor();
    auto rows = ctx->saved_data["rows"].toTensor();
    auto cols = ctx->saved_data["cols"].toTensor();
    int64_t in = w.size(1);
    int64_t out = w.size(0);
    auto g2 = gradOutputs[0].reshape({-1, out});
    auto x2 = x.reshape({-1, in});

    torch::Tensor dx, dvalues, db;
    if (ctx->needs_input_grad(0)) {
      if (UseSparseLayout(indices.numel(), g2.size(0), w)) {
        dx = torch::matmul(g2, w);
        AddGatheredColumns(dx, g2, cols, rows, values);
      } else {
        dx = torch::matmul(g2, MergedWeight(w, indices, values));
      }
      dx = dx.view(x.sizes());
    }
    if (ctx->needs_input_grad(1)) dvalues = Sddmm(g2, x2, rows, cols);
    if (ctx->saved_data["has_bias"].toBool() && ctx->needs_input_grad(3)) db = g2.sum(0);
    return {dx, dvalues, torch::Tensor(), db, torch::Tensor()};
  }
};

void Check(bool ok, const std::string& msg) {
  if (!ok) throw std::invalid_argument("sparseDeltaLinear: " + msg);
}

}  // namespace

// sparseDeltaLinear(x, weight, bias | null, indices, values)
static Napi::Value SparseDeltaLinear(const Napi::CallbackInfo& info) {
  auto& x = T(info, 0);
  auto& w = T(info, 1);
  torch::Tensor b;
  if (!info[2].IsNull() && !info[2].IsUndefined()) b = T(info, 2);
  auto& indices = T(info, 3);
  auto& values = T(info, 4);
  Check(w.dim() == 2, "weight must be 2-D [out, in]");
  Check(!w.requires_grad(), "weight must be frozen (requires_grad false); the values carry the gradient");
  Check(x.dim() >= 1 && x.size(-1) == w.size(1),
        "input's last dimension " + std::to_string(x.size(-1)) + " != weight's in_features " +
            std::to_string(w.size(1)));
  Check(indices.dim() == 1 && indices.scalar_type() == torch::kInt64, "indices must be a 1-D int64 tensor");
  Check(values.dim() == 1 && values.numel() == indices.numel(),
        "values must be 1-D with one value per index (" + std::to_string(indices.numel()) + ")");
  Check(values.scalar_type() == w.scalar_type() && x.scalar_type() == w.scalar_type(),
        "input, weight and values must share a dtype");
  Check(!b.defined() || (b.dim() == 1 && b.size(0) == w.size(0)), "bias must be 1-D [out]");
  // Reading the bounds back waits for the device, every call: on a GPU, index_add's own
  // device-side check catches a bad index instead (and PEFT builds its indices itself).
  if (indices.numel() > 0 && indices.device().is_cpu()) {
    auto lo = indices.min().item<int64_t>();
    auto hi = indices.max().item<int64_t>();
    Check(lo >= 0 && hi < w.numel(), "indices must lie in [0, " + std::to_string(w.numel()) + "), got [" +
                                         std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  if (!b.defined()) b = torch::empty({0}, w.options());
  return TensorHandle::Wrap(info.Env(), SparseDeltaLinearFn::apply(x, values, w, b, indices));
}

// sddmm(a[T,out], b[T,in], rows, cols): the bare kernel, for benchmarks.
static Napi::Value SddmmOp(const Napi::CallbackInfo& info) {
  return TensorHandle::Wrap(info.Env(), Sddmm(T(info, 0), T(info, 1), T(info, 2), T(info, 3)));
}

void RegisterSparseDeltaLinear(Registry& r) {
  r.add<SparseDeltaLinear>("sparseDeltaLinear");
  r.add<SddmmOp>("sddmm");
}

}  // namespace randmask
