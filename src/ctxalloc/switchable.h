// The switchable layer (above allocators): segment sources, the global and per-thread
// heaps, modes and scopes, owner-routed remote frees, fixed and growing contexts, and
// coroutine frames, behind allocate()/deallocate() (docs/switchable.md).
// One header for the whole layer (an umbrella): for users and for layers above. The
// layer's own files include the headers they need, never this one.
#pragma once

#include "ctxalloc/switchable/context.h"
#include "ctxalloc/switchable/context_arena.h"
#include "ctxalloc/switchable/context_base.h"
#include "ctxalloc/switchable/coroutine.h"
#include "ctxalloc/switchable/flow_chunks.h"
#include "ctxalloc/switchable/global_heap.h"
#include "ctxalloc/switchable/growing_context.h"
#include "ctxalloc/switchable/owner.h"
#include "ctxalloc/switchable/segment_chain.h"
#include "ctxalloc/switchable/segment_source.h"
#include "ctxalloc/switchable/switchable.h"
#include "ctxalloc/switchable/thread_heap.h"
