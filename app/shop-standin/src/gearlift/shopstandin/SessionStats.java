package gearlift.shopstandin;

/** Session counters for /health and /metrics, provided by the front end's session manager. */
interface SessionStats {
    int live();

    long created();

    long expired();
}
