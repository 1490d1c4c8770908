/* opl — rng (to be written). */
