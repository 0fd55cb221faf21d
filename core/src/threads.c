/* Thread count of the OpenMP team. It is retort's only pool: OpenBLAS runs single-threaded on
 * tiles the team hands out (backend/cpu/cpu_gemm.c). */
#include <omp.h>

#include "internal.h"

void rt_set_num_threads(int n)
{
    if (n <= 0)
        n = omp_get_num_procs();
    omp_set_num_threads(n);
}

int rt_get_num_threads(void) { return omp_get_max_threads(); }
