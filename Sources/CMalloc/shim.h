// glibc's malloc tuning (mallopt), which Swift's Glibc module does not expose.
#if defined(__linux__)
#include <malloc.h>
#endif
