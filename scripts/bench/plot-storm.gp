# The figure of one reconnect-storm run (scripts/bench/storm.sh): clients
# connected and handshakes per second above, lines answered per second and
# lines pending below, through the server's restart.
#
# Given with -e: out (the SVG to write), csv (the run's --series), clients
# and restart (for the title), and in seconds since the lines started:
# tsig (the SIGTERM), tup (the new server listening), tback (every client
# back) and tdone (every pending line answered; 1e9 if never).

set terminal svg size 900,640 dynamic enhanced font "sans,13" background "white"
set output out
set datafile separator ","
set datafile columnheaders
set multiplot layout 2,1 title sprintf("Reconnect storm: %s clients, server restarted (SIGTERM, new process on the same port, restart: %s)", clients, restart)
set xrange [tsig - 2 : (tdone < 1e8 ? tdone : tsig + 20) + 2]
set grid
set key outside below horizontal
set arrow 1 from tsig, graph 0 to tsig, graph 1 nohead dt 2 lc rgb "red"
set label 1 "SIGTERM" at tsig, graph 0.92 right offset -0.5,0 tc rgb "red"
set arrow 2 from tup, graph 0 to tup, graph 1 nohead dt 2 lc rgb "dark-green"
set label 2 "new server listening" at tup, graph 0.5 left offset 0.5,0 tc rgb "dark-green"
set arrow 3 from tback, graph 0 to tback, graph 1 nohead dt 3 lc rgb "black"
set label 3 "every client back" at tback, graph 0.2 right offset -0.5,0
set ylabel "clients connected"
set yrange [0:*]
set y2label "handshakes per second"
set y2tics
set y2range [0:*]
set ytics nomirror
# Column 5 is the handshakes completed in each interval: divided by the
# interval's length, a rate.
plot csv using 1:2 with lines lw 2 lc rgb "blue" title "clients connected", \
     pt = 0, "" using 1:(dt = $1 - pt, pt = $1, $0 == 0 || dt <= 0 ? 1/0 : $5 / dt) axes x1y2 with steps lc rgb "orange" title "handshakes/s"
unset label 2
unset label 3
set arrow 3 from tdone, graph 0 to tdone, graph 1 nohead dt 3 lc rgb "black"
set label 4 "every pending line answered" at tdone, graph 0.85 right offset -0.5,0
set xlabel "seconds since the lines started"
set ylabel "lines answered per second"
set y2label "lines not answered yet"
# Columns 3 and 4 are the lines due and answered so far.
plot pa = 0, pb = 0, csv using 1:(da = $4 - pa, pa = $4, db = $1 - pb, pb = $1, $0 == 0 || db <= 0 ? 1/0 : da / db) with steps lw 2 lc rgb "blue" title "lines answered/s", \
     "" using 1:($3 - $4) axes x1y2 with lines lc rgb "purple" title "lines due, not answered yet"
unset multiplot
