/* opl — lbfgs (to be written). */
