package supervisor

// wnohang is WNOHANG from AIX's <sys/wait.h>; x/sys/unix does not define it there.
const wnohang = 0x1
