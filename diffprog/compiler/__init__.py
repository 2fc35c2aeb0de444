"""The compiler driver: runs the stages (frontend, normalize, analysis, transforms, backend) for one function and
one call signature. `front` is the checking half the command line shares; `function` and `derived` compile user
functions and their derivatives; `nested` expands transforms called inside differentiated code."""
