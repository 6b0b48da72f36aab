// A caching CPU allocator for tensor storage, installed as libtorch's CPU
// allocator. A training step allocates the same sizes every step; glibc
// hands large blocks out as fresh mmap()s (page faults on every activation,
// measured: fp32 matmul at half speed) and, under Node, interleaves freed
// blocks with the small native objects of handles awaiting finalisation, so
// the heap fragments and RSS climbs. Here blocks of 16 KiB and more are
// mapped separately, kept after free in size classes (≤ 12.5% rounding), and
// reused; the cache is capped (RANDMASK_CPU_CACHE_MIB, default 2048; 0 turns
// caching off) and can be emptied from TypeScript.
#include <c10/core/CPUAllocator.h>
#include <sys/mman.h>

#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "common.h"

namespace randmask {
namespace {

constexpr size_t kMinCached = size_t{16} << 10;

struct Cache {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> free;
  // sizes of the mapped blocks in use; data == context, as raw_allocate() requires
  std::unordered_map<void*, size_t> mapped;
  size_t cachedBytes = 0;
  size_t capBytes = size_t{2048} << 20;
  size_t liveBytes = 0;
  size_t peakLiveBytes = 0;
};

Cache& TheCache() {
  static Cache* cache = new Cache();  // never destroyed: tensors may be freed during exit
  return *cache;
}

// Size classes: 8 steps per power of two above the 64 KiB minimum (≤ 12.5% rounding).
size_t SizeClass(size_t n) {
  size_t p = kMinCached;
  while (p < n) p <<= 1;
  size_t step = p / 16;  // p/2 .. p in eighths of p/2
  size_t base = p / 2;
  if (n <= base) return base;
  return base + ((n - base + step - 1) / step) * step;
}

void* MapBlock(size_t total) {
  void* p = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  return p;
}

// One deleter for everything this allocator hands out (also its raw_deleter).
void Free(void* p) {
  Cache& c = TheCache();
  std::lock_guard<std::mutex> lock(c.mu);
  auto it = c.mapped.find(p);
  if (it == c.mapped.end()) {
    std::free(p);
    return;
  }
  size_t total = it->second;
  c.mapped.erase(it);
  c.liveBytes -= total;
  if (c.cachedBytes + total <= c.capBytes) {
    c.free[total].push_back(p);
    c.cachedBytes += total;
  } else {
    munmap(p, total);
  }
}

class CachingCpuAllocator final : public c10::Allocator {
 public:
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
  c10::DataPtr allocate(size_t n) override { return Allocate(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const override { default_copy_data(dest, src, count); }
#else
  c10::DataPtr allocate(size_t n) const override { return Allocate(n); }
#endif
  c10::DeleterFnPtr raw_deleter() const override { return &Free; }

 private:
  static c10::DataPtr Allocate(size_t n) {
    if (n < kMinCached) {
      void* p = nullptr;
      if (posix_memalign(&p, 64, n == 0 ? 1 : n) != 0) throw std::bad_alloc();
      return {p, p, &Free, c10::Device(c10::DeviceType::CPU)};
    }
    size_t total = SizeClass(n);
    Cache& c = TheCache();
    void* p = nullptr;
    {
      std::lock_guard<std::mutex> lock(c.mu);
      auto it = c.free.find(total);
      if (it != c.free.end() && !it->second.empty()) {
        p = it->second.back();
        it->second.pop_back();
        c.cachedBytes -= total;
      }
    }
    if (!p) p = MapBlock(total);
    std::lock_guard<std::mutex> lock(c.mu);
    c.mapped[p] = total;
    c.liveBytes += total;
    c.peakLiveBytes = std::max(c.peakLiveBytes, c.liveBytes);
    return {p, p, &Free, c10::Device(c10::DeviceType::CPU)};
  }
};

}  // namespace

void InstallCpuAllocator() {
  const char* env = std::getenv("RANDMASK_CPU_CACHE_MIB");
  if (env) {
    long mib = std::strtol(env, nullptr, 10);
    if (mib <= 0) return;  // caching off: libtorch's own allocator
    TheCache().capBytes = static_cast<size_t>(mib) << 20;
  }
  static CachingCpuAllocator allocator;
  c10::SetCPUAllocator(&allocator, /*priority=*/100);
}

// emptyCache(): returns cached free blocks to the OS; reports what it freed.
static Napi::Value EmptyCache(const Napi::CallbackInfo& info) {
  Cache& c = TheCache();
  std::lock_guard<std::mutex> lock(c.mu);
  double freed = static_cast<double>(c.cachedBytes);
  for (auto& kv : c.free)
    for (void* p : kv.second) munmap(p, kv.first);
  c.free.clear();
  c.cachedBytes = 0;
  return Napi::Number::New(info.Env(), freed);
}

static Napi::Value CacheStats(const Napi::CallbackInfo& info) {
  Cache& c = TheCache();
  std::lock_guard<std::mutex> lock(c.mu);
  auto obj = Napi::Object::New(info.Env());
  obj.Set("cachedBytes", static_cast<double>(c.cachedBytes));
  obj.Set("liveBytes", static_cast<double>(c.liveBytes));
  obj.Set("peakLiveBytes", static_cast<double>(c.peakLiveBytes));
  obj.Set("capBytes", static_cast<double>(c.capBytes));
  return obj;
}

void RegisterCpuAllocator(Registry& r) {
  r.add<EmptyCache>("emptyCache");
  r.add<CacheStats>("cacheStats");
}

}  // namespace randmask
