# Sourced by dist.sh and packages.sh: write_sums DIR rewrites DIR/SHA256SUMS
# over every release file in DIR (archives and packages).
write_sums() {
	(
		cd "$1"
		shopt -s nullglob
		files=(circled*.tar.gz circled*.zip circled*.deb circled*.rpm)
		if [ ${#files[@]} -eq 0 ]; then
			rm -f SHA256SUMS
			return
		fi
		sha256sum "${files[@]}" >SHA256SUMS.tmp
		mv SHA256SUMS.tmp SHA256SUMS
	)
}
