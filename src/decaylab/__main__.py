from decaylab.cli import main

main()
