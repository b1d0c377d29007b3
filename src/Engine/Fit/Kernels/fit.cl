/* MaLiang MLE fit kernel: ported from the CPU backend in phase 2. */
