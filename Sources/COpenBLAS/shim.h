// OpenBLAS's CBLAS interface and its thread controls (openblas_set_num_threads).
#include <cblas.h>
