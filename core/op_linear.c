/* opl — op_linear (to be written). */
