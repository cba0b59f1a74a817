// The replace layer, highest in src/: operator new/delete (libctxalloc_new) and the
// malloc family (libctxalloc_preload.so) on the switchable heaps. Its one public header is
// the statistics report; everything else is the replaced functions themselves.
// One header for the whole layer (an umbrella), as for every layer.
#pragma once

#include "ctxalloc/replace/process_stats.h"
