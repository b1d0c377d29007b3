/* mlcsv STACK.tif OUT.csv OFFSET_ADU: localizes a TIFF stack through the C ABI alone (default settings, the given
 * camera offset, 1 thread) and writes the CSV. Built for each platform the tests can run (linux-x64 natively,
 * linux-arm64 under qemu-user, win-x64 under Wine) so their CSVs can be compared with the linux-x64 one. */
#include <stdio.h>
#include <stdlib.h>
#include "maliang.h"

static int fail(const char* what) {
    fprintf(stderr, "mlcsv: %s: %s\n", what, ml_last_error());
    return 1;
}

int main(int argc, char** argv) {
    if (argc != 4) { fprintf(stderr, "usage: mlcsv STACK.tif OUT.csv OFFSET_ADU\n"); return 2; }
    ml_settings s;
    ml_localizer* h = NULL;
    int64_t n = 0, written = 0;
    if (ml_default_settings(&s)) return fail("ml_default_settings");
    s.offset_adu = atof(argv[3]);
    s.threads = 1;
    if (ml_create(&s, &h)) return fail("ml_create");
    if (ml_push_file(h, argv[1])) return fail("ml_push_file");
    if (ml_result_count(h, &n)) return fail("ml_result_count");
    ml_localization* locs = malloc((size_t)(n > 0 ? n : 1) * sizeof *locs);
    if (!locs || ml_read_results(h, 0, locs, n, &written) || written != n) return fail("ml_read_results");
    if (ml_write_csv(argv[2], locs, n, s.pixel_size_nm)) return fail("ml_write_csv");
    printf("%s %lld localizations\n", ml_version(), (long long)n);
    free(locs);
    return ml_destroy(h) ? fail("ml_destroy") : 0;
}
