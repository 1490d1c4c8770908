/* opl — op_reduce (to be written). */
