/* opl — op_shape (to be written). */
