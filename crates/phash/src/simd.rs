//! Run-time selection of vector instructions for the hot loops.
//!
//! Plain x86-64 code may only assume SSE2, whose integer multiply is slow; the hot
//! loops are therefore also compiled with AVX2 enabled and picked at run time. The
//! results are identical either way: all the vectorised arithmetic is on integers.

/// Define `$name`, which runs `$inline_fn` (an `#[inline(always)]` function, so the
/// feature reaches every loop it inlines) compiled for AVX2 when the CPU has it.
macro_rules! dispatch {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident $(<$($gen:ident: $bound:path),*>)? ($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty
        => $inline_fn:ident
    ) => {
        $(#[$meta])*
        $vis fn $name $(<$($gen: $bound),*>)? ($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                fn avx2 $(<$($gen: $bound),*>)? ($($arg: $ty),*) -> $ret {
                    $inline_fn($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU supports AVX2, checked just above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $inline_fn($($arg),*)
        }
    };
}

pub(crate) use dispatch;
