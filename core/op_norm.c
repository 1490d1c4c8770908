/* opl — op_norm (to be written). */
