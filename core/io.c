/* opl — io (to be written). */
