/* opl — optim (to be written). */
