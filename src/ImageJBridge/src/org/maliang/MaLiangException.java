package org.maliang;

/** A failure reported by libmaliang.so: {@link #status()} is the ml_status, the message is ml_last_error(). */
public class MaLiangException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final int status;

    public MaLiangException(int status, String message) {
        super(message);
        this.status = status;
    }

    /** ml_status: 1 argument, 2 input, 3 cancelled, 4 backend, 5 internal. */
    public int status() { return status; }

    public boolean isCancelled() { return status == MaLiang.ML_ERR_CANCELLED; }
}
