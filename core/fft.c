/* opl — fft (to be written). */
