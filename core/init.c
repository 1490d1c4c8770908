/* opl — init (to be written). */
