/* nnp prints its effective uid. Installed setuid root in the nonewprivs test image:
 * with no_new_privs set the setuid bit is ignored and it prints the caller's uid.
 * It stands in for kubernetes/test/images/nonewprivs. */
#include <stdio.h>
#include <unistd.h>

int main(void) {
	printf("Effective uid: %d\n", (int)geteuid());
	return 0;
}
