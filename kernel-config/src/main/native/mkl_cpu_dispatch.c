/*
 * Preloaded into JLens's JVMs on x86-64 CPUs whose vendor is not Intel (see bin/jlens-env).
 *
 * The libtorch that DJL loads links Intel MKL statically and exports MKL's vendor check. MKL asks it before it
 * picks a code path, and on other vendors' CPUs (AMD EPYC, Ryzen) it falls back to kernels that ignore AVX2 and
 * AVX-512: an fp32 GEMM then runs at about half the speed the CPU can give. MKL still checks the instruction sets the
 * CPU reports before it uses them, so answering "Intel" only lifts the vendor test. Turn it off with
 * JLENS_MKL_SHIM=off.
 */
int mkl_serv_intel_cpu_true(void) {
    return 1;
}
