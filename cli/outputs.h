/* opl command line — outputs never destroy inputs: the check every writing verb makes before it
 * writes (train -o, eval --out / --plot, solve -o, generate -o), the cleanup of temporaries left
 * by a killed run, and the metrics log of a training run that wrote no checkpoint. */
#ifndef OPL_CLI_OUTPUTS_H
#define OPL_CLI_OUTPUTS_H

#include <sys/types.h>
#include <time.h>

/* A file named on the command line: what names it ("-o", "--data", "MODEL.h5") and its path
 * (NULL or "": not given, skipped). */
typedef struct cli_file {
  const char *what;
  const char *path;
} cli_file;

/* Before verb writes anything: every output must be a file different from every input and from
 * every other output (core/files.h opl_same_file: device and inode, so hard and symbolic links
 * and other spellings are caught; names that do not exist yet are compared by directory and
 * name; an input that does not exist is left to the verb to report). The first clash is printed ("opl train: -o 'd.h5' is the same file as --data 'd.h5'
 * ...") and 2 returned (a usage error: nothing has been written). Otherwise the temporaries
 * "<output>.tmp.<pid>" of processes that no longer run are removed (a note on stderr says how
 * many; failing to remove one is a note too, never an error), and 0 is returned. */
int cli_outputs_check(const char *verb, const cli_file *outs, int nout, const cli_file *ins, int nin);


#endif
