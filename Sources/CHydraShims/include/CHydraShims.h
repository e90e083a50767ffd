#ifndef CHYDRA_SHIMS_H
#define CHYDRA_SHIMS_H

// Constants that exist only as macros behind feature-test macros, which Swift cannot see.
extern const int chydra_O_DIRECT;
extern const int chydra_O_CLOEXEC;

#endif
