// C stdio's buffering, which Swift 6 cannot reach through the `stdout` global (not Sendable).
#include <stdio.h>

/// Line-buffers standard output, so a redirected log gets each line as it is printed.
static inline void rlaif_line_buffer_stdout(void) { setvbuf(stdout, NULL, _IOLBF, 0); }
