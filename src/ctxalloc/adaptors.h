// The adaptors layer (above switchable): ctxalloc allocators as std::pmr resources and
// STL allocators, the current-allocator resource, and the C API (docs/c_api.md).
// One header for the whole layer (an umbrella): for users and for layers above. The
// layer's own files include the headers they need, never this one.
#pragma once

#include "ctxalloc/adaptors/ctxalloc.h"
#include "ctxalloc/adaptors/current_resource.h"
#include "ctxalloc/adaptors/pmr.h"
#include "ctxalloc/adaptors/stl_allocator.h"
