# SPDX-License-Identifier: GPL-2.0
# The chart of "make bench": pages_sharing over (virtual, -icount) time on
# the convergence workload, our KSM against upstream's, one panel per
# setting.  scripts/bench-report.py runs it with dir='build/bench'.
if (!exists("dir")) dir = 'build/bench'
set terminal pngcairo size 960,400 font ",10"
set output dir.'/convergence.png'
set multiplot layout 1,2 title "8 processes x 64 MiB, 70% shared, shuffled: pages\\_sharing over time (QEMU -icount: virtual seconds)"
set xlabel "seconds since run=1"
set ylabel "pages\\_sharing"
set key bottom right
set grid
set yrange [0:*]
set title "default: pages\\_to\\_scan 100, sleep\\_millisecs 20"
plot dir.'/conv-ours-default.dat' using 1:2 with lines lw 2 title "ours", \
     dir.'/conv-baseline-default.dat' using 1:2 with lines lw 2 title "upstream"
set title "aggressive: pages\\_to\\_scan 1000, sleep\\_millisecs 0"
plot dir.'/conv-ours-aggressive.dat' using 1:2 with lines lw 2 title "ours", \
     dir.'/conv-baseline-aggressive.dat' using 1:2 with lines lw 2 title "upstream"
unset multiplot
