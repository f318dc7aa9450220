/* hold: a service whose child stays alive while its client keeps the connection open.
 * Writes one byte ("+") so the client knows the child runs, then reads stdin until EOF or error. */
#include <unistd.h>
int main(void) {
  char b[256];
  if (write(1, "+", 1) != 1) return 1;
  while (read(0, b, sizeof b) > 0) {}
  return 0;
}
