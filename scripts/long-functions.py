#!/usr/bin/env python3
# Lists non-test Rust functions longer than N lines (default 60) in crates/*/src:
#   python3 scripts/long-functions.py [N]
import re,glob,sys
limit=int(sys.argv[1]) if len(sys.argv)>1 else 60
for f in glob.glob('crates/*/src/**/*.rs',recursive=True):
    lines=open(f).read().split('\n')
    # skip test modules: find line index of '#[cfg(test)]' followed by mod
    test_start=len(lines)
    for i,l in enumerate(lines):
        if l.strip()=='#[cfg(test)]' and i+1<len(lines) and lines[i+1].lstrip().startswith('mod '):
            test_start=i;break
    i=0
    while i<test_start:
        l=lines[i]
        m=re.match(r'^(\s*)(pub(\([a-z]+\))? )?(async )?(const )?fn (\w+)',l)
        if m:
            indent=len(m.group(1))
            # find opening brace line then matching close at same indent
            j=i
            while j<len(lines) and not lines[j].rstrip().endswith('{') and not lines[j].rstrip().endswith(';'):
                j+=1
            if j<len(lines) and lines[j].rstrip().endswith(';'):
                i+=1;continue
            k=j+1
            while k<len(lines) and not (lines[k].startswith(' '*indent+'}') and len(lines[k])-len(lines[k].lstrip())==indent):
                k+=1
            n=k-i+1
            if n>limit: print(f'{n:4d} {f}:{i+1} {m.group(6)}')
            i=k
        i+=1
