#include "ctxalloc/switchable/segment_source.h"

namespace ctxalloc {

SegmentSource::SegmentSource(const MapOptions& options, std::size_t limit_bytes) noexcept
    : source_(options), limit_(limit_bytes) {}

SegmentSource::SegmentSource(const SegmentBackend& backend, std::size_t limit_bytes) noexcept
    : backend_(backend), limit_(limit_bytes) {}

SegmentSource::~SegmentSource() {
  for (std::size_t i = 0; i < cached_; ++i)
    give(cache_[i]);
}

Block SegmentSource::take(std::size_t bytes) noexcept {
  if (backend_.obtain == nullptr) return source_.obtain_aligned(bytes, kSegmentSize);
  const Block b = backend_.obtain(backend_.context, bytes);
  if (b.ptr != nullptr && (b.size < bytes || !is_aligned(b.ptr, kSegmentSize))) {
    backend_.release(backend_.context, b);  // a backend that broke its contract
    return Block{};
  }
  return b;
}

void SegmentSource::give(Block b) noexcept {
  if (backend_.obtain == nullptr) {
    source_.release(b);
  } else {
    backend_.release(backend_.context, b);
  }
}

Block SegmentSource::obtain(std::size_t count) noexcept {
  if (count == 0 || count > (SIZE_MAX / kSegmentSize)) return Block{};
  const std::size_t bytes = count * kSegmentSize;
  std::lock_guard<std::mutex> guard(lock_);
  if (limit_ != 0 && out_.get() + bytes > limit_) return Block{};
  Block b{};
  if (count == 1 && cached_ > 0) {
    b = cache_[--cached_];
  } else {
    b = take(bytes);
    if (b.ptr == nullptr) return b;
  }
  out_.add(b.size);
  peak_.raise_to(out_.get());
  return b;
}

void SegmentSource::release(Block segments) noexcept {
  if (segments.ptr == nullptr) return;
  std::lock_guard<std::mutex> guard(lock_);
  out_.sub(segments.size);
  if (segments.size == kSegmentSize && cached_ < kCacheSlots) {
    cache_[cached_++] = segments;  // its pages stay as they are: reused by the next taker
    return;
  }
  give(segments);
}

void SegmentSource::trim() noexcept {
  std::lock_guard<std::mutex> guard(lock_);
  while (cached_ > 0)
    give(cache_[--cached_]);
}

SegmentProvider SegmentSource::provider() noexcept {
  return SegmentProvider{
      this, [](void* self) noexcept { return static_cast<SegmentSource*>(self)->obtain(1); },
      [](void* self, Block b) noexcept { static_cast<SegmentSource*>(self)->release(b); }};
}

}  // namespace ctxalloc
