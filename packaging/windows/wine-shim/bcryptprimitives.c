/*
 * bcryptprimitives.dll shim for Wine 8, test support only.
 *
 * Go >= 1.22 on Windows gets its random bytes from ProcessPrng in
 * bcryptprimitives.dll, which Wine 8 does not export, so every Go binary
 * dies at start. This DLL provides ProcessPrng on top of RtlGenRandom
 * (advapi32!SystemFunction036). packaging/windows/test-wine.sh builds it with
 * x86_64-w64-mingw32-gcc and copies it into the Wine prefix's system32.
 * Never ship it: real Windows has the real DLL.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buf, ULONG len);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
	while (len > 0) {
		ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
		if (!SystemFunction036(data, n))
			return FALSE;
		data += n;
		len -= n;
	}
	return TRUE;
}
