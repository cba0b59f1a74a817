// The core layer, lowest of all: Layout and Block, bit tricks, the Allocator and
// MemorySource concepts, Stats, misuse reporting, invariant checks, DynAllocator, the
// SegmentMap (which owner holds an address) and the memory-tool marks (poison.h).
// Includes nothing of ctxalloc above it.
// One header for the whole layer (an umbrella): for users and for layers above. The
// layer's own files include the headers they need, never this one.
#pragma once

#include "ctxalloc/core/allocator.h"
#include "ctxalloc/core/bits.h"
#include "ctxalloc/core/check.h"
#include "ctxalloc/core/dyn_allocator.h"
#include "ctxalloc/core/layout.h"
#include "ctxalloc/core/memory_source.h"
#include "ctxalloc/core/misuse.h"
#include "ctxalloc/core/poison.h"
#include "ctxalloc/core/sanitizers.h"
#include "ctxalloc/core/segment_map.h"
#include "ctxalloc/core/source_error.h"
#include "ctxalloc/core/stats.h"
