"""Identifiers the C backend's generated code must not define: everything that glibc's
`<math.h>`, `<stdint.h>`, `<stdlib.h>` and `<string.h>` declare under `-std=c11` (functions,
types, fields and macros; listed with gcc 12 `-E` and `-dM -E`), plus the OpenMP runtime's
entry points. A kernel or variable with one of these names gets a suffix.
"""

from __future__ import annotations

HEADER_NAMES = frozenset("""
EXIT_FAILURE EXIT_SUCCESS FP_ILOGB0 FP_ILOGBNAN FP_INFINITE FP_NAN FP_NORMAL FP_SUBNORMAL
FP_ZERO HUGE_VAL HUGE_VALF HUGE_VALL INFINITY INT16_C INT16_MAX INT16_MIN INT32_C INT32_MAX
INT32_MIN INT64_C INT64_MAX INT64_MIN INT8_C INT8_MAX INT8_MIN INTMAX_C INTMAX_MAX
INTMAX_MIN INTPTR_MAX INTPTR_MIN INT_FAST16_MAX INT_FAST16_MIN INT_FAST32_MAX INT_FAST32_MIN
INT_FAST64_MAX INT_FAST64_MIN INT_FAST8_MAX INT_FAST8_MIN INT_LEAST16_MAX INT_LEAST16_MIN
INT_LEAST32_MAX INT_LEAST32_MIN INT_LEAST64_MAX INT_LEAST64_MIN INT_LEAST8_MAX
INT_LEAST8_MIN MATH_ERREXCEPT MATH_ERRNO MB_CUR_MAX NAN NULL PTRDIFF_MAX PTRDIFF_MIN
RAND_MAX SIG_ATOMIC_MAX SIG_ATOMIC_MIN SIZE_MAX UINT16_C UINT16_MAX UINT32_C UINT32_MAX
UINT64_C UINT64_MAX UINT8_C UINT8_MAX UINTMAX_C UINTMAX_MAX UINTPTR_MAX UINT_FAST16_MAX
UINT_FAST32_MAX UINT_FAST64_MAX UINT_FAST8_MAX UINT_LEAST16_MAX UINT_LEAST32_MAX
UINT_LEAST64_MAX UINT_LEAST8_MAX WCHAR_MAX WCHAR_MIN WINT_MAX WINT_MIN abort abs acos acosf
acosh acoshf acoshl acosl aligned_alloc asin asinf asinh asinhf asinhl asinl at_quick_exit
atan atan2 atan2f atan2l atanf atanh atanhf atanhl atanl atexit atof atoi atol atoll bsearch
calloc cbrt cbrtf cbrtl ceil ceilf ceill char const copysign copysignf copysignl cos cosf
cosh coshf coshl cosl div div_t double double_t enum erf erfc erfcf erfcl erff erfl exit exp
exp2 exp2f exp2l expf expl expm1 expm1f expm1l extern fabs fabsf fabsl fdim fdimf fdiml
float float_t floor floorf floorl fma fmaf fmal fmax fmaxf fmaxl fmin fminf fminl fmod fmodf
fmodl fpclassify free frexp frexpf frexpl getenv hypot hypotf hypotl ilogb ilogbf ilogbl int
int16_t int32_t int64_t int8_t int_fast16_t int_fast32_t int_fast64_t int_fast8_t
int_least16_t int_least32_t int_least64_t int_least8_t intmax_t intptr_t isfinite isgreater
isgreaterequal isinf isless islessequal islessgreater isnan isnormal isunordered labs ldexp
ldexpf ldexpl ldiv ldiv_t lgamma lgammaf lgammal llabs lldiv lldiv_t llrint llrintf llrintl
llround llroundf llroundl log log10 log10f log10l log1p log1pf log1pl log2 log2f log2l logb
logbf logbl logf logl long lrint lrintf lrintl lround lroundf lroundl malloc
math_errhandling mblen mbstowcs mbtowc memchr memcmp memcpy memmove memset modf modff modfl
nan nanf nanl nearbyint nearbyintf nearbyintl nextafter nextafterf nextafterl nexttoward
nexttowardf nexttowardl pow powf powl qsort quick_exit quot rand realloc rem remainder
remainderf remainderl remquo remquof remquol rint rintf rintl round roundf roundl scalbln
scalblnf scalblnl scalbn scalbnf scalbnl short signbit signed sin sinf sinh sinhf sinhl sinl
size_t sqrt sqrtf sqrtl srand strcat strchr strcmp strcoll strcpy strcspn strerror strlen
strncat strncmp strncpy strpbrk strrchr strspn strstr strtod strtof strtok strtol strtold
strtoll strtoul strtoull struct strxfrm system tan tanf tanh tanhf tanhl tanl tgamma tgammaf
tgammal trunc truncf truncl typedef uint16_t uint32_t uint64_t uint8_t uint_fast16_t
uint_fast32_t uint_fast64_t uint_fast8_t uint_least16_t uint_least32_t uint_least64_t
uint_least8_t uintmax_t uintptr_t unsigned void wchar_t wcstombs wctomb
""".split())

OPENMP_NAMES = frozenset("""
omp_get_thread_num omp_get_num_threads omp_get_max_threads omp_set_num_threads
omp_in_parallel omp_get_wtime GOMP_parallel GOMP_barrier GOMP_critical_start
GOMP_critical_end GOMP_atomic_start GOMP_atomic_end
""".split())
