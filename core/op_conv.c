/* opl — op_conv (to be written). */
