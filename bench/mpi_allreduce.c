/* MPI_Allreduce of float32 sums, the reference for rlaif's ring all-reduce
 * (bench/allreduce_vs_mpi.sh builds and runs it). Prints one line per size:
 *   ranks MB best_ms bus_GB/s median_ms median_bus_GB/s
 * with bus bandwidth 2(n-1)/n * bytes / time, bytes = 4 * floats, for the best and the median of
 * the timed repeats. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int ascending(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int repeats = argc > 1 ? atoi(argv[1]) : 3;
    int sizes[] = {1, 4, 16, 64};
    for (int s = 0; s < 4; s++) {
        size_t count = (size_t)sizes[s] << 18;
        float *in = malloc(count * sizeof(float)), *out = malloc(count * sizeof(float));
        for (size_t i = 0; i < count; i++) in[i] = (float)((i * 2654435761u + rank) % 1000) * 1e-5f;
        double *times = malloc(repeats * sizeof(double));
        for (int r = 0; r <= repeats; r++) {  /* round 0 warms up */
            MPI_Barrier(MPI_COMM_WORLD);
            double start = MPI_Wtime();
            MPI_Allreduce(in, out, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            double local = MPI_Wtime() - start, slowest;
            MPI_Allreduce(&local, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
            if (r > 0) times[r - 1] = slowest;
        }
        if (rank == 0) {
            qsort(times, repeats, sizeof(double), ascending);
            double best = times[0], median = times[repeats / 2];
            double bytes = 2.0 * (size - 1) / size * (double)(count * 4);
            printf("%5d %4d %10.1f %10.2f %10.1f %10.2f\n", size, sizes[s], best * 1000, bytes / best / 1e9,
                   median * 1000, bytes / median / 1e9);
            fflush(stdout);
        }
        free(in);
        free(out);
        free(times);
    }
    MPI_Finalize();
    return 0;
}
