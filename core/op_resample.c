/* opl — op_resample (to be written). */
