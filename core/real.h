/* opl — scalar type of tensors, chosen at build time (-Dprecision=single|double).
 *
 * One small table of macros stamps the FFTW and BLAS names, the way FFTW stamps
 * its own fftw_/fftwf_ API: code is written once against opl_real, OPL_FFTW(x)
 * and the opl_*gemm names, and compiles to either precision. */
#ifndef OPL_REAL_H
#define OPL_REAL_H

#include <fftw3.h>
#include <cblas.h>

#ifdef OPL_DOUBLE
typedef double opl_real;
#define OPL_FFTW(name) fftw_##name
#define OPL_REAL_EPS 2.220446049250313e-16
#define OPL_PRECISION_NAME "double"
#define opl_gemm cblas_dgemm
#define opl_gemv cblas_dgemv
#define opl_cgemm cblas_zgemm
#define opl_axpy_blas cblas_daxpy
#define opl_dot_blas cblas_ddot
#define OPL_HDF5_NATIVE H5T_NATIVE_DOUBLE
#else
typedef float opl_real;
#define OPL_FFTW(name) fftwf_##name
#define OPL_REAL_EPS 1.1920929e-07
#define OPL_PRECISION_NAME "single"
#define opl_gemm cblas_sgemm
#define opl_gemv cblas_sgemv
#define opl_cgemm cblas_cgemm
#define opl_axpy_blas cblas_saxpy
#define opl_dot_blas cblas_sdot
#define OPL_HDF5_NATIVE H5T_NATIVE_FLOAT
#endif

typedef OPL_FFTW(plan) opl_fftw_plan;
typedef OPL_FFTW(complex) opl_fftw_complex;

#endif
