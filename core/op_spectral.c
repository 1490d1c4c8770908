/* opl — op_spectral (to be written). */
