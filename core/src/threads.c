/* Thread count shared by OpenMP loops and OpenBLAS. */
#include <omp.h>

#include "internal.h"

void openblas_set_num_threads(int n);
int openblas_get_num_threads(void);

void rt_set_num_threads(int n)
{
    if (n <= 0)
        n = omp_get_num_procs();
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int rt_get_num_threads(void) { return omp_get_max_threads(); }
