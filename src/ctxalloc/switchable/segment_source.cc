#include "ctxalloc/switchable/segment_source.h"

namespace ctxalloc {

SegmentSource::SegmentSource(const MapOptions& options, std::size_t limit_bytes) noexcept
    : source_(options), limit_(limit_bytes) {}

SegmentSource::~SegmentSource() {
  for (std::size_t i = 0; i < cached_; ++i)
    source_.release(cache_[i]);
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
    b = source_.obtain_aligned(bytes, kSegmentSize);
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
  source_.release(segments);
}

SegmentProvider SegmentSource::provider() noexcept {
  return SegmentProvider{
      this, [](void* self) noexcept { return static_cast<SegmentSource*>(self)->obtain(1); },
      [](void* self, Block b) noexcept { static_cast<SegmentSource*>(self)->release(b); }};
}

}  // namespace ctxalloc
